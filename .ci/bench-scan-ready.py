"""Used by .ci/bench-scan: prints how many of the addresses listed in
argv[1] do not answer `GET /` with 200 on port argv[2] yet (1 s each)."""
import socket
import sys

port = int(sys.argv[2])
left = 0
for ip in open(sys.argv[1]).read().split():
    try:
        with socket.create_connection((ip, port), timeout=1) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if not s.recv(64).startswith(b"HTTP/1.1 200"):
                left += 1
    except OSError:
        left += 1
print(left)
