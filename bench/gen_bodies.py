#!/usr/bin/env python3
"""Write N signed ~2 KB WhatsApp text-message webhooks, one per line: `<signature>\t<body>`.

Every body has a unique message id, so every request is recorded (none is a duplicate).
Users rotate over USERS numbers so the dispatcher sees many conversations, as in production.
OUT ending in .gz is written gzipped (a 10 s run needs ~1 GB of bodies uncompressed, ~10 MB so).
Usage: gen_bodies.py OUT N [SECRET] [USERS]
"""
import gzip
import hashlib
import hmac
import json
import sys

out, n = sys.argv[1], int(sys.argv[2])
secret = (sys.argv[3] if len(sys.argv) > 3 else "bench-secret").encode()
users = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
text = ("Hello, I would like to know more about your opening hours and delivery options. " * 22)[:1700]

opener = (lambda p: gzip.open(p, "wt", compresslevel=1)) if out.endswith(".gz") else (lambda p: open(p, "w"))
with opener(out) as f:
    for i in range(n):
        user = str(5511900000000 + i % users)
        body = json.dumps({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                "contacts": [{"profile": {"name": "Bench User"}, "wa_id": user}],
                "messages": [{"from": user, "id": f"wamid.bench.{i:010d}", "timestamp": "1700000000",
                              "type": "text", "text": {"body": text}}],
            }}]}],
        }, separators=(",", ":"))
        sig = "sha256=" + hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        f.write(f"{sig}\t{body}\n")
