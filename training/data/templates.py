"""Template corpora (English and Korean) for the emotion and Korean supervision.

Why: the public corpora are English tweets and reviews with sentiment only; nothing
here has Korean emotion text. We compose sentences from a situation clause, an
emotion expression and, sometimes, an extra clause (regret, causes, people, face,
money...). Labels are NOT taken from the template slots: the labeling functions of
`training.weak` label every generated sentence, exactly as they label tweets, and a
sentence whose emotion label disagrees with the slot it was built from is dropped
(documented in the model card with the count). The hand-labeled evaluation set
(`tests/data/emotion_eval.jsonl`) was written separately and any overlap is removed.
"""

from __future__ import annotations

import numpy as np

from schemas import labels as L

TEMPLATE_SEED = 7

SITUATIONS_KO: tuple[str, ...] = (
    "오늘 회사에서", "어제 집에 오는 길에", "주말에 가족들과", "친구랑 통화하다가", "시험 결과를 보고", "뉴스를 보다가",
    "아침에 일어나서", "엄마 전화를 받고", "동생이랑 얘기하다가", "회의가 끝나고", "카페에 앉아 있다가", "학교 앞에서",
    "월급날에", "병원에 다녀와서", "이사 준비를 하면서", "오랜만에 고향에 가서",
)
EXPRESSIONS_KO: dict[str, tuple[str, ...]] = {
    "joy": ("정말 기뻤어요", "너무 행복하다", "기분이 최고야 신난다", "마음이 뿌듯했다", "즐거운 하루였어요", "웃음이 멈추지 않았다", "다행이라서 기뻤다",
            "신이 나서 춤을 췄다", "행복해서 날아갈 것 같다", "합격 소식에 너무 기뻐요"),
    "love": ("네가 정말 소중해", "당신을 사랑해요", "너무 보고 싶어", "우리 가족을 정말 아끼고 사랑한다", "항상 고마워 사랑해", "그 사람이 그립다",
             "너를 많이 아껴", "당신이 곁에 있어서 고마워요", "네가 그리워서 잠이 안 와"),
    "surprise": ("깜짝 놀랐다", "믿기지 않았어요", "예상 못 한 일이라 놀랐어", "세상에 이럴 수가 너무 놀라웠다", "갑자기 그런 일이 생겨서 놀랐다",
                 "내 눈을 의심했다", "설마 했는데 진짜였다", "입이 떡 벌어졌다"),
    "anger": ("너무 화가 났다", "정말 짜증나", "열받아서 참을 수가 없다", "억울하고 분노가 치민다", "어이없어서 화가 난다", "괘씸해서 용서 못 해",
              "화가 치밀어 올랐다", "참을 수 없을 만큼 분했다"),
    "fear": ("너무 무서웠다", "겁이 나서 떨렸어", "불안해서 잠이 안 온다", "두려운 마음이 들었다", "걱정이 돼서 조마조마했다",
             "겁에 질려 움직일 수 없었다", "소름이 돋고 두려웠다", "불안해서 손이 떨린다"),
    "sadness": ("너무 슬펐다", "눈물이 났어요", "우울하고 외로워", "마음이 아프고 허전하다", "혼자 울었다", "비참한 기분이 들었다",
                "서운하고 속상했다", "울적한 하루였다", "가슴이 먹먹하고 슬프다"),
    "disgust": ("역겨워서 토할 것 같았다", "정말 더럽고 불쾌했다", "혐오스러워", "구역질이 났어요", "징그럽고 메스꺼웠다",
                "보기만 해도 역겹다", "위선적인 모습이 혐오스럽다", "냄새가 너무 불쾌했다"),
}
EXTRAS_KO: tuple[str, ...] = (
    "", "", "", "", "", "그때 다른 선택을 했더라면 좋았을 텐데 후회된다", "내 잘못이라서 더 괴롭다", "그래서 모두에게 말했다",
    "체면 때문에 아무 말도 못 했다", "오래 정이 든 사람들이라 더 그렇다", "가슴에 한이 맺힌 것 같다", "돈 문제 때문에 생긴 일이다",
    "경찰에 신고해야 할지 모르겠다", "지금 당장 도와줘", "앞으로 계속 이럴 것 같다", "아마 내일이면 괜찮을 거야",
    # regret in its Korean forms (-았어야, -지 말았어야, -ㄹ걸 그랬다, -더라면, 후회/아쉽): verbs and endings vary
    "좀 더 참았어야 했는데 후회가 된다", "미리 연락할걸 그랬다", "그 사람을 믿지 말았어야 했다",
    "일찍 출발했으면 좋았을 텐데 아쉽다", "그 일은 두고두고 후회할 것 같다", "그때 사과했더라면 달라졌을까",
    "괜히 그 얘기를 꺼내서 후회하고 있다", "내가 먼저 물어봤어야 했다",
)

SITUATIONS_EN: tuple[str, ...] = (
    "At work today", "On my way home", "After the exam results came out", "When my sister called", "This morning",
    "After the meeting", "At the party last night", "When I read the news", "During dinner with my parents",
    "After talking to my landlord", "At the hospital", "When I opened the letter", "On the bus", "After the game",
)
EXPRESSIONS_EN: dict[str, tuple[str, ...]] = {
    "joy": ("I felt so happy", "I was thrilled and could not stop smiling", "I was delighted", "it was a wonderful day", "I felt proud and glad"),
    "love": ("I realised how much I love them", "I adore my family", "I miss you so much", "I cherish every moment with her", "my heart is full of affection for him"),
    "surprise": ("I was completely shocked", "I couldn't believe it", "it was totally unexpected", "wow, I was so surprised", "I was astonished"),
    "anger": ("I was furious", "I got so angry", "I am fed up and annoyed", "I was outraged", "I am sick of this, it is so unfair"),
    "fear": ("I was terrified", "I felt scared and anxious", "I am worried and nervous", "I was afraid something bad would happen", "it felt like a nightmare"),
    "sadness": ("I felt so sad", "I cried all night", "I am lonely and depressed", "I was heartbroken", "I felt miserable and hopeless"),
    "disgust": ("it was disgusting", "I felt disgusted", "it was gross and filthy", "the smell was revolting", "it made me sick, so vile"),
}
EXTRAS_EN: tuple[str, ...] = (
    "", "", "", "", "", "I should have said something, and I regret it.", "It was my fault.", "That's why I told everyone.",
    "I could not lose face in front of them.", "We have a bond like family.", "It feels like a lifelong grief that never healed.",
    "It was all about money.", "I might call the police.", "I need help right now!", "It will probably go on for years.",
    "Maybe it will be fine tomorrow.", "I wish I had listened to her.", "I shouldn't have sent that message.",
    "If only I had left earlier.", "Looking back, I should've asked first.",
)


def generate(lang: str, per_emotion: int, seed: int = TEMPLATE_SEED) -> list[tuple[str, str]]:
    """`per_emotion` distinct sentences per emotion: `(text, emotion the slot intended)`."""
    if lang == "ko":
        situations, expressions, extras = SITUATIONS_KO, EXPRESSIONS_KO, EXTRAS_KO
    elif lang == "en":
        situations, expressions, extras = SITUATIONS_EN, EXPRESSIONS_EN, EXTRAS_EN
    else:
        raise ValueError(f"templates exist for 'en' and 'ko', not {lang!r}")
    rng = np.random.default_rng(seed + (0 if lang == "en" else 1))
    out: list[tuple[str, str]] = []
    for emotion in L.EMOTIONS:
        combos = [(s, e, x) for s in situations for e in expressions[emotion] for x in extras]
        order = rng.permutation(len(combos))[:per_emotion]
        for i in order:
            s, e, x = combos[i]
            if lang == "ko":
                text = f"{s} {e}." + (f" {x}." if x else "")
            else:
                text = f"{s}, {e}." + (f" {x}" if x else "")
            out.append((text, emotion))
    return out
