#!/usr/bin/python3
"""A small HTTP/1.1 server for the tests: serves the files of a directory
with byte ranges (206, Content-Range), keeps connections alive, and counts
what it does in a JSON file, so a test can check that a client reuses its
connections and asks for ranges.  Optionally it fails on purpose:

  --fail-first N      answer 503 to the first N GETs with a range
  --drop-every N      close the connection instead of answering every Nth GET
  --no-ranges         ignore Range headers (always 200 with the whole file)

Writes its port to --port-file once it listens; runs until killed."""
import argparse, json, os, re, socketserver, threading
from http.server import BaseHTTPRequestHandler, HTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--dir", required=True)
parser.add_argument("--port-file", required=True)
parser.add_argument("--stats", required=True)
parser.add_argument("--fail-first", type=int, default=0)
parser.add_argument("--drop-every", type=int, default=0)
parser.add_argument("--no-ranges", action="store_true")
args = parser.parse_args()

lock = threading.Lock()
stats = {"connections": 0, "gets": 0, "ranged": 0, "heads": 0, "failed": 0, "dropped": 0}

def count(key):
    with lock:
        stats[key] += 1
        n = stats[key]
        with open(args.stats + ".tmp", "w") as f:
            json.dump(stats, f)
        os.replace(args.stats + ".tmp", args.stats)
        return n

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        count("connections")

    def log_message(self, *a):
        pass

    def file(self):
        path = os.path.join(args.dir, os.path.basename(self.path.split("?")[0]))
        return path if os.path.isfile(path) else None

    def do_HEAD(self):
        count("heads")
        path = self.file()
        if not path:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

    def do_GET(self):
        n = count("gets")
        path = self.file()
        if not path:
            self.send_error(404)
            return
        if args.drop_every and n % args.drop_every == 0:
            count("dropped")
            self.close_connection = True
            self.connection.shutdown(2)
            return
        size = os.path.getsize(path)
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if m and not args.no_ranges:
            if count("ranged") <= args.fail_first:
                count("failed")
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start, end = int(m.group(1)), min(int(m.group(2)), size - 1)
            with open(path, "rb") as f:
                f.seek(start)
                body = f.read(end - start + 1)
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        else:
            with open(path, "rb") as f:
                body = f.read()
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True

server = Server(("127.0.0.1", 0), Handler)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(args.port_file + ".tmp", args.port_file)
server.serve_forever()
