"""Cue phrases (English and Korean) that the labeling functions look for.

Every list is a *documented guess*, not ground truth: a text that contains a cue votes
for the label. English cues match whole words or phrases (lowercased); Korean cues
match substrings (Korean attaches endings to stems, so "화가 났" must also match
"화가 났다", "화가 났어요"). Keep each list short and specific: a cue that fires on
neutral text teaches the heads noise.
"""

from __future__ import annotations

# ---- emotions (in `labels.EMOTIONS` order) --------------------------------------
EMOTION_CUES_EN: dict[str, tuple[str, ...]] = {
    "joy": ("happy", "glad", "delighted", "thrilled", "excited", "joy", "cheerful", "wonderful", "great day",
            "so fun", "yay", "awesome", "fantastic", "celebrate", "proud", "relieved", "can't wait"),
    "love": ("love", "adore", "miss you", "my dear", "sweetheart", "care about", "cherish", "grateful for you",
             "hug", "affection", "fond of", "my heart", "lovely", "beloved", "thankful for"),
    "surprise": ("surprised", "shocked", "can't believe", "cannot believe", "unexpected", "out of nowhere",
                 "wow", "whoa", "omg", "no way", "suddenly", "astonished", "amazed", "didn't expect", "never expected"),
    "anger": ("angry", "furious", "mad at", "pissed", "rage", "outraged", "annoyed", "irritated", "hate",
              "fed up", "how dare", "sick of", "infuriating", "livid", "unfair"),
    "fear": ("afraid", "scared", "terrified", "frightened", "fear", "anxious", "worried", "nervous", "panic",
             "dread", "what if", "unsafe", "scary", "creepy", "nightmare"),
    "sadness": ("sad", "unhappy", "depressed", "crying", "cried", "tears", "heartbroken", "lonely", "miserable",
                "grief", "lost my", "passed away", "miss him", "miss her", "gloomy", "sorrow", "hopeless"),
    "disgust": ("disgusting", "disgusted", "gross", "revolting", "nasty", "vile", "repulsive", "sickening",
                "yuck", "ew", "filthy", "rotten", "makes me sick", "appalling", "creep"),
}
EMOTION_CUES_KO: dict[str, tuple[str, ...]] = {
    "joy": ("기쁘", "기뻐", "기뻤", "행복", "신나", "신난", "신이 나", "즐거", "즐겁", "좋아서", "설레", "뿌듯", "다행", "최고야", "웃음이"),
    "love": ("사랑", "보고 싶", "보고싶", "소중", "아끼", "아껴", "좋아해", "고마워", "고맙", "그리워", "그립", "품에", "애틋"),
    "surprise": ("놀랐", "놀라", "깜짝", "믿기지", "믿을 수 없", "예상 못", "예상치 못", "갑자기", "어머", "세상에", "헐",
                 "눈을 의심", "설마", "입이 떡"),
    "anger": ("화가 나", "화가 났", "화가 난", "화난", "화나", "배신", "짜증", "열받", "빡치", "분노", "억울", "괘씸", "어이없", "용서 못", "화가 치", " 분했", " 분하다", "분통"),
    "fear": ("무서", "무섭", "무시무시", "두려", "겁이", "겁나", "불안", "걱정", "떨려", "공포", "소름이 돋", "조마조마", "겁에 질"),
    "sadness": ("슬프", "슬퍼", "슬픈", "슬펐", "눈물", "우울", "외로", "외롭", "서글", "허전", "마음이 아프", "울었", "비참", "속상", "서운", "울적", "먹먹"),
    "disgust": ("역겨", "역겹", "더러", "더럽", "혐오", "구역질", "토할", "징그", "불쾌", "비위", "메스꺼"),
}

# ---- Korean cultural intensities (jeong, han, chemyeon) -------------------------
CULTURAL_CUES_EN: dict[str, tuple[str, ...]] = {
    "jeong": ("bond", "attached to", "like family", "warm-hearted", "neighbors", "grown on me", "old friend", "loyal"),
    "han": ("resentment", "lifelong grief", "unresolved", "bitter", "injustice", "never healed", "long-held sorrow", "deep grief"),
    "chemyeon": ("save face", "saving face", "lose face", "losing face", "embarrassed", "reputation", "what people think",
                 "humiliated", "ashamed", "dignity"),
}
CULTURAL_CUES_KO: dict[str, tuple[str, ...]] = {
    "jeong": ("정이", "정들", "정을", "미운 정", "고운 정", "情", "가족 같", "식구", "인정 많"),
    "han": ("한이", "한스럽", "한 맺", "恨", "응어리", "서러", "서럽", "원통", "억울한 세월"),
    "chemyeon": ("체면", "면목", "창피", "부끄러", "남들 보기", "남 보기", "망신", "눈치", "자존심"),
}

# ---- regret ----------------------------------------------------------------------
REGRET_CUES: dict[str, tuple[str, ...]] = {
    # counterfactual thinking: imagining the world had gone otherwise
    "counterfactual_thinking": ("should have", "shouldn't have", "should not have", "could have", "would have",
                                "should've", "shouldn't've", "could've", "would've", "wish i'd",
                                "if only", "wish i had", "wish i hadn't", "had i"),
    # Korean counterfactuals are matched by form, not by a word list: KO_COUNTERFACTUAL_PATTERNS below.
    "personal_responsibility": ("my fault", "i caused", "i ruined", "i messed up", "my mistake", "i blame myself",
                                "내 탓", "내 잘못", "내가 망", "내 실수", "자책"),
    "outcome_severity": ("ruined", "destroyed", "lost everything", "disaster", "terrible", "died", "death", "fired",
                         "망했", "잃었", "최악", "죽었", "해고", "끝장"),
    "missed_opportunity": ("missed", "chance", "opportunity", "too late", "never got to", "놓쳤", "기회", "못 했",
                           "하지 못"),
    "irreversibility": ("never again", "too late", "forever", "can't undo", "cannot undo", "no going back",
                        "돌이킬 수 없", "되돌릴 수 없", "늦었", "다시는", "영영"),
}
REGRET_WORDS: tuple[str, ...] = ("regret", "regrets", "regretted", "regretting", "regretful", "remorse",
                                 "kicking myself", "in hindsight", "후회", "아쉽", "아쉬워", "아쉬웠", "아쉬운", "미련")
COUNTERFACTUAL_CUES: dict[str, tuple[str, ...]] = {
    "acted_differently": ("should have", "could have", "should've", "could've", "if only i had", "wish i had",
                          "wish i'd"),
    "did_nothing": ("shouldn't have", "should not have", "shouldn't've", "wish i hadn't", "never should have",
                    ),
    "waited": ("should have waited", "too soon", "too early", "rushed", "기다렸어야", "너무 일찍", "서둘렀", "성급"),
}


# ---- Korean counterfactual morphology (used by functions.korean_counterfactuals) ---------
# Korean fuses the past tense into the verb's last syllable (가 + 았 -> 갔), so the
# counterfactual "should have <verb>ed" (-았/었어야 했다) is "a syllable ending in ㅆ,
# then 어야", whatever the verb: 했어야, 갔어야, 말했어야, 참았어야. A fixed substring list
# only catches the verbs it names, which is why "화내지 말았어야 했는데" went unlabeled.
def hangul_with_final(final: int) -> str:
    """All precomposed Hangul syllables whose final consonant (jongseong) has index `final`."""
    return "".join(chr(0xAC00 + i) for i in range(11172) if i % 28 == final)


_SS = hangul_with_final(20).replace("있", "")  # final ㅆ; 있어야 = "needs to have", not a counterfactual
_L = hangul_with_final(8)  # final ㄹ (-ㄹ걸 "I should have ...")
KO_COUNTERFACTUAL_PATTERNS: dict[str, str] = {
    # "should not have": -지 말았어야 / -지 말걸 / 안 ...더라면 / -지 않았더라면
    "did_nothing": r"지\s*말았어야|지\s*말\s?걸|(?:^|\s)안\s*\S*더라면|지\s*않았더라면",
    # "should have": <ㅆ-final syllable>어야 (했어야, 갔어야, 참았어야), except 말았어야 (above)
    "acted_differently": rf"(?:(?<!말)았|[{_SS.replace('았', '')}])어야",
    # "I should have ..." regret ending -ㄹ걸 그랬다 (a bare -ㄹ걸 is usually a guess: 비가 올걸)
    "should_have_ending": rf"[{_L}]\s?걸\s*그랬",
    # counterfactual conditional: -더라면, <ㅆ-final syllable>다면 (했다면, 갔다면), 했으면 좋았을
    "conditional": rf"더라면|[{_SS}]다면|[{_SS}]으면\s*(?:좋|나)았을",
    # a wish about the past, no alternative named: 좋았을 텐데, 나았을 걸
    "wish": r"(?:좋|나)았을\s*(?:텐데|걸|것을)",
}

# ---- Bentham factors ------------------------------------------------------------
INTENSIFIERS: tuple[str, ...] = ("very", "so", "extremely", "really", "totally", "absolutely", "incredibly",
                                 "너무", "정말", "진짜", "엄청", "완전", "매우", "몹시")
DURATION_LONG: tuple[str, ...] = ("forever", "always", "years", "lifelong", "for life", "permanent", "decades",
                                  "every day", "평생", "항상", "오래", "영원", "몇 년", "매일", "늘")
DURATION_SHORT: tuple[str, ...] = ("moment", "briefly", "for a second", "quick", "잠깐", "잠시", "순간")
CERTAIN: tuple[str, ...] = ("definitely", "certainly", "sure", "for sure", "no doubt", "clearly", "always", "will",
                            "확실", "분명", "반드시", "틀림없")
HEDGES: tuple[str, ...] = ("maybe", "perhaps", "might", "possibly", "probably", "not sure", "i guess", "unclear",
                           "아마", "혹시", "모르겠", "같아요", "듯")
NEAR: tuple[str, ...] = ("now", "today", "tonight", "right now", "this morning", "just", "immediately",
                         "지금", "오늘", "방금", "당장", "오늘밤")
FUTURE: tuple[str, ...] = ("will", "tomorrow", "next", "future", "soon", "going to", "내일", "다음", "미래", "앞으로")
GROUPS: tuple[str, ...] = ("everyone", "everybody", "people", "community", "society", "country", "the public",
                           "all of us", "we", "us", "family", "friends", "neighbors", "children", "kids", "team",
                           "사람들", "모두", "다들", "사회", "나라", "국민", "가족", "친구들", "우리", "아이들")
HARM_OTHERS: tuple[str, ...] = ("hurt them", "hurt her", "hurt him", "harm", "damage", "victim", "injured",
                                "pollution", "cheated", "stole", "lied to", "피해", "상처를 줬", "다쳤", "속였", "훔쳤")
MONEY_SHARE: tuple[str, ...] = ("donate", "donated", "charity", "share", "shared", "gave", "give back", "tax",
                                "salary", "money", "rich", "poor", "기부", "나눠", "나누", "월급", "돈", "세금", "가난")
SELF_HARM: tuple[str, ...] = ("hurt myself", "my health", "ruined my", "i can't sleep", "exhausted", "burned out",
                              "drinking too much", "skipped meals", "내 건강", "잠을 못", "지쳤", "몸이 망", "과음")

# ---- who is affected (6) x in which respect (6): Bentham context weights -------------
PARTY_CUES: dict[str, tuple[str, ...]] = {
    "self": ("i", "me", "my", "myself", "i'm", "나는", "내가", "저는", "제가", "나를", "내 "),
    "family": ("mom", "mother", "dad", "father", "sister", "brother", "wife", "husband", "son", "daughter", "family",
               "parents", "grandma", "엄마", "아빠", "어머니", "아버지", "언니", "오빠", "동생", "아내", "남편", "가족", "부모"),
    "friends": ("friend", "friends", "buddy", "roommate", "girlfriend", "boyfriend", "친구", "동료", "애인", "남자친구", "여자친구"),
    "strangers": ("stranger", "someone", "a man", "a woman", "customer", "passenger", "driver", "낯선", "누군가", "손님", "승객"),
    "society": ("society", "people", "country", "public", "government", "community", "everyone", "사회", "나라", "국민", "정부", "사람들"),
    "future": ("future", "next generation", "children", "kids", "years from now", "later", "미래", "다음 세대", "아이들", "나중"),
}
ASPECT_CUES: dict[str, tuple[str, ...]] = {
    "physical": ("hurt", "injured", "sick", "pain", "body", "health", "hospital", "accident", "아프", "다쳤", "병원", "건강", "사고"),
    "emotional": ("feel", "felt", "sad", "happy", "angry", "afraid", "love", "heart", "마음", "기분", "슬프", "행복", "화가"),
    "financial": ("money", "paid", "pay", "salary", "debt", "rent", "price", "cost", "돈", "월급", "빚", "월세", "가격"),
    "social": ("friends", "party", "relationship", "reputation", "together", "group", "관계", "모임", "평판", "함께"),
    "legal": ("law", "illegal", "police", "court", "sue", "lawyer", "contract", "법", "불법", "경찰", "법원", "소송", "계약"),
    "moral": ("right", "wrong", "lie", "lied", "honest", "fair", "unfair", "cheat", "guilt", "거짓말", "정직", "양심", "옳", "잘못"),
}
LEGAL_CUES: dict[str, tuple[str, ...]] = {
    "criminal": ("steal", "stole", "stolen", "robbed", "assault", "kill", "murder", "drugs", "fraud", "arrested",
                 "훔쳤", "도둑", "폭행", "살인", "마약", "사기", "체포"),
    "civil_liability": ("sue", "sued", "lawsuit", "damages", "negligence", "broke the contract", "compensation",
                        "소송", "배상", "손해", "계약 위반", "과실"),
    "privacy": ("password", "private", "privacy", "my address", "leaked", "spying", "tracked", "personal data",
                "비밀번호", "개인정보", "사생활", "유출", "몰래 찍"),
    "discrimination": ("because she is a woman", "because he is black", "racist", "sexist", "discriminat", "slur",
                       "because of my age", "차별", "인종", "여자라서", "남자라서", "나이 때문에"),
    "regulatory": ("regulation", "permit", "license", "tax", "violation", "compliance", "inspection", "fine",
                   "규제", "허가", "면허", "세금", "위반", "벌금"),
}

# ---- per-event causal cues (SURD kinds and cues) -------------------------------------
CAUSAL: tuple[str, ...] = ("because", "since", "due to", "so that", "therefore", "caused", "led to", "as a result",
                           "that's why", "때문", "그래서", "덕분", "탓에", "해서", "니까", "으니")
REDUNDANT: tuple[str, ...] = ("both", "also", "as well", "either way", "anyway", "또한", "역시", "둘 다", "어차피")
SYNERGISTIC: tuple[str, ...] = ("only when", "only if", "together", "combined", "both of them together", "at the same time",
                                "the combination", "함께", "동시에", "둘이 합쳐", "겹쳐서", "만 있으면")
LEAK: tuple[str, ...] = ("for no reason", "no idea why", "don't know why", "randomly", "out of nowhere", "somehow",
                         "이유 없이", "왜인지", "모르겠", "갑자기", "괜히")
AGENCY: tuple[str, ...] = ("i did", "i decided", "i chose", "i made", "i told", "i quit", "i bought", "i left",
                           "i started", "내가 했", "결정했", "선택했", "그만뒀", "시작했", "내가 ")

# ---- utility indicators ----------------------------------------------------------
URGENT: tuple[str, ...] = ("urgent", "asap", "right now", "immediately", "help", "emergency", "hurry", "quick",
                           "급해", "급하", "당장", "빨리", "도와", "응급")
NOVEL: tuple[str, ...] = ("new", "first time", "never before", "just found", "discovered", "breaking", "처음",
                          "새로", "새로운", "발견")
TIME_SENSITIVE: tuple[str, ...] = ("today", "tonight", "now", "breaking", "this week", "price", "score", "live",
                                   "오늘", "지금", "이번 주", "속보", "가격")
