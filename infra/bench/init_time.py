#!/usr/bin/env python3
"""Measures each function's init (cold start without the download): the time from exec of its
release `bootstrap` to its first `GET /runtime/invocation/next` on a stand-in Lambda Runtime API.

    cargo lambda build --release
    python3 infra/bench/init_time.py [target/lambda] [runs]

Environment values are obviously fake: init must not call AWS (clients are built lazily)."""
import http.server, os, statistics, subprocess, sys, threading, time

LAMBDA_DIR = sys.argv[1] if len(sys.argv) > 1 else "target/lambda"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
FUNCTIONS = ["api", "messenger-webhook", "messenger-ingest", "agent-reply", "auth-claims"]
ENV = {
    "AWS_REGION": "ap-south-1", "AWS_ACCESS_KEY_ID": "AKIDFAKE", "AWS_SECRET_ACCESS_KEY": "fake",
    "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
    "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
    "TABLE_NAME": "t", "INBOUND_QUEUE_URL": "https://sqs.ap-south-1.amazonaws.com/1/q",
    "REPLIES_QUEUE_URL": "https://sqs.ap-south-1.amazonaws.com/1/r", "TOKEN_KEY_ID": "k",
    "DATA_BUCKET": "b", "META_SECRET_ID": "s", "META_GRAPH_BASE": "https://graph.facebook.com",
    "META_DIALOG_BASE": "https://www.facebook.com", "META_GRAPH_VERSION": "v23.0",
    "JWT_ISSUER": "https://cognito-idp.ap-south-1.amazonaws.com/ap-south-1_x",
    "JWT_JWKS_URL": "https://cognito-idp.ap-south-1.amazonaws.com/ap-south-1_x/.well-known/jwks.json",
    "JWT_CLIENT_IDS": "c", "PUBLIC_BASE_URL": "https://api.example.in", "RUST_LOG": "warn",
}

first_poll = threading.Event()

class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        first_poll.set()
        time.sleep(5)  # hold the long poll; the process is killed meanwhile
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
threading.Thread(target=server.serve_forever, daemon=True).start()
env = dict(ENV, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}", PATH=os.environ["PATH"])
for name in FUNCTIONS:
    binary = os.path.join(LAMBDA_DIR, name, "bootstrap")
    times = []
    for _ in range(RUNS):
        first_poll.clear()
        start = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not first_poll.wait(10):
            proc.kill(); sys.exit(f"{name}: no poll within 10 s")
        times.append((time.perf_counter() - start) * 1000)
        proc.kill(); proc.wait()
    size = os.path.getsize(binary) / 1048576
    print(f"{name:18} {size:5.1f} MB  init median {statistics.median(times):5.1f} ms  p90 {sorted(times)[int(RUNS*0.9)-1]:5.1f} ms  ({RUNS} runs)")
server.shutdown()
