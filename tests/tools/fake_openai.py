#!/usr/bin/python3
"""A local OpenAI-compatible chat completions server for tests (Python 3 stdlib only).

Speaks the wire format of POST /v1/chat/completions as OpenAI streams it: server-sent
events, each `data: <chunk JSON>` followed by a blank line, chunk objects
{"id","object":"chat.completion.chunk","created","model","system_fingerprint",
"choices":[{"index":0,"delta":{...},"logprobs":null,"finish_reason":...}]}, tool calls as
`delta.tool_calls[{index,id,type,function:{name,arguments}}]` with the id, type and name in
the first fragment and the arguments split over later ones, a usage chunk with
"choices":[] when the request asks for stream_options.include_usage, then `data: [DONE]`.
Without "stream": true it answers one chat.completion object.

The answer is scripted by the last user message:
  the last message is a tool result: "The tool said: <its content>" in word deltas
  contains "tool:NAME"   one call of NAME with arguments {"city":"Paris"} in fragments
  contains "tools:2"     two calls (get_weather, get_time) in one turn
  contains "error:401"   401 with OpenAI's error object (invalid_api_key)
  contains "error:429"   429 rate_limit_exceeded
  contains "error:500"   500 server_error
  contains "hang"        headers never come (until the client goes away)
  contains "slow"        40 deltas, 100 ms apart
  contains "garbage"     a chunk that is not JSON
  otherwise              "Hello! You said: <message>" in word deltas
With --api-key KEY, requests without "Authorization: Bearer KEY" get 401.

Usage: fake_openai.py [--port 0] [--api-key KEY]
  prints the port on the first line of stdout, then serves until killed.
  GET /_requests returns the JSON list of requests received ({path, headers, body}).
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REQUESTS = []
LOCK = threading.Lock()
API_KEY = None

ERRORS = {
    "error:401": (401, {"message": "Incorrect API key provided: sk-te****st. You can find your "
                        "API key at https://platform.openai.com/account/api-keys.",
                        "type": "invalid_request_error", "param": None,
                        "code": "invalid_api_key"}),
    "error:429": (429, {"message": "Rate limit reached for gpt-4o-mini in organization org-x on "
                        "requests per min (RPM): Limit 3, Used 3, Requested 1.",
                        "type": "requests", "param": None, "code": "rate_limit_exceeded"}),
    "error:500": (500, {"message": "The server had an error while processing your request. "
                        "Sorry about that!", "type": "server_error", "param": None,
                        "code": None}),
}


def last_user(messages):
    for m in reversed(messages or []):
        if m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else ""
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path == "/_requests":
            with LOCK:
                body = json.dumps(REQUESTS).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_error(404)

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        try:
            req = json.loads(raw)
        except ValueError:
            req = None
        with LOCK:
            REQUESTS.append({"path": self.path, "headers": dict(self.headers.items()),
                             "body": req})
        if not self.path.endswith("/chat/completions"):
            self.send_json(404, {"error": {"message": "Not found", "type": "invalid_request_error",
                                           "param": None, "code": None}})
            return
        if API_KEY is not None and self.headers.get("Authorization") != f"Bearer {API_KEY}":
            self.send_json(401, {"error": ERRORS["error:401"][1]})
            return
        if not isinstance(req, dict) or not isinstance(req.get("messages"), list):
            self.send_json(400, {"error": {"message": "'messages' is a required property",
                                           "type": "invalid_request_error", "param": None,
                                           "code": None}})
            return
        text = last_user(req["messages"])
        for key, (status, err) in ERRORS.items():
            if key in text:
                self.send_json(status, {"error": err})
                return
        if "hang" in text:
            # never answer; end when the client goes away (or after a minute)
            self.connection.settimeout(60)
            try:
                while self.connection.recv(1024):
                    pass
            except OSError:
                pass
            return
        self.answer(req, text)

    def answer(self, req, text):
        model = req.get("model", "")
        cid = "chatcmpl-" + format(int(time.time() * 1000) % 10**12, "x") + "fake"
        created = int(time.time())
        stream = bool(req.get("stream"))
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in req["messages"]) + 7
        deltas, calls, delay = [], [], 0.0
        last = req["messages"][-1] if req["messages"] else {}
        if isinstance(last, dict) and last.get("role") == "tool":
            # after its tool ran, the model answers with what the tool returned
            words = f"The tool said: {last.get('content')}".split(" ")
            deltas = [w if i == 0 else " " + w for i, w in enumerate(words)]
        elif "tools:2" in text:
            calls = [("get_weather", ['{"', 'city', '":"', 'Paris', '"}']),
                     ("get_time", ['{"tz":', '"Europe/Paris"}'])]
        elif "tool:" in text:
            name = text.split("tool:", 1)[1].split()[0]
            calls = [(name, ['{"', 'city', '":"', 'Paris', '"}'])]
        elif "slow" in text:
            deltas = [f"word{i} " for i in range(40)]
            delay = 0.1
        else:
            words = f"Hello! You said: {text}".split(" ")
            deltas = [w if i == 0 else " " + w for i, w in enumerate(words)]
        completion_tokens = len(deltas) + sum(len(f) for _, f in calls)
        finish = "tool_calls" if calls else "stop"
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        if not stream:
            msg = {"role": "assistant", "content": None if calls else "".join(deltas)}
            if calls:
                msg["tool_calls"] = [{"id": f"call_{i}abc", "type": "function",
                                      "function": {"name": n, "arguments": "".join(f)}}
                                     for i, (n, f) in enumerate(calls)]
            self.send_json(200, {"id": cid, "object": "chat.completion", "created": created,
                                 "model": model, "choices": [{"index": 0, "message": msg,
                                                              "logprobs": None,
                                                              "finish_reason": finish}],
                                 "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(delta, finish_reason=None, choices=True, usage_obj=None):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "system_fingerprint": "fp_fake",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                "finish_reason": finish_reason}] if choices else []}
            if include_usage:
                obj["usage"] = usage_obj
            self.send_event("data: " + json.dumps(obj, separators=(",", ":")) + "\n\n")

        try:
            if "garbage" in text:
                chunk({"role": "assistant", "content": ""})
                self.send_event("data: {this is not json\n\n")
            else:
                chunk({"role": "assistant", "content": "" if not calls else None,
                       "refusal": None})
                for d in deltas:
                    if delay:
                        time.sleep(delay)
                    chunk({"content": d})
                for i, (name, frags) in enumerate(calls):
                    chunk({"tool_calls": [{"index": i, "id": f"call_{i}abc", "type": "function",
                                           "function": {"name": name, "arguments": ""}}]})
                    for f in frags:
                        chunk({"tool_calls": [{"index": i, "function": {"arguments": f}}]})
                chunk({}, finish)
                if include_usage:
                    chunk(None, choices=False, usage_obj=usage)
                self.send_event("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            with LOCK:
                REQUESTS[-1]["client_went_away"] = True

    def send_event(self, text):
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def main():
    global API_KEY
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--api-key")
    args = ap.parse_args()
    API_KEY = args.api_key
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
