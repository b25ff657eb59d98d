# A MockupDB server for the MongoDB client's tests (run by MockupDbServer.ts with Debian's /usr/bin/python3).
#
# stdout, one JSON object a line:
#   {"port": P}                                  once, when listening
#   {"command": <canonical extended JSON>, "db": D, "flags": F, "op": "msg"|"query", "client": PORT}
#                                                for every request received, printed BEFORE it is answered
#   {"sync": N}                                  answer to a sync line on stdin
# stdin, one JSON object a line:
#   {"script": NAME, "replies": [<extended JSON>...]}   replies for command NAME, used in order; the last sticks
#   {"reset": true}                                      forget every script
#   {"sync": N}                                          echo it back (everything received before is printed)
import sys, json, threading, collections
from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from mockupdb import MockupDB, OpMsg, OP_MSG_FLAGS

port = int(sys.argv[1])
lock = threading.Lock()
scripts = {}
out_lock = threading.Lock()

def emit(obj):
    line = json.dumps(obj)
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

HELLO = {
    "helloOk": True, "ismaster": True, "isWritablePrimary": True,
    "maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000,
    "logicalSessionTimeoutMinutes": 30, "connectionId": 1,
    "minWireVersion": 0, "maxWireVersion": 21, "readOnly": False,
}

def default_reply(name, doc):
    if name in ("hello", "ismaster", "isMaster"):
        return HELLO
    if name == "insert":
        return {"ok": 1, "n": len(doc.get("documents", []))}
    if name == "update":
        return {"ok": 1, "n": len(doc.get("updates", [])), "nModified": len(doc.get("updates", []))}
    if name == "delete":
        return {"ok": 1, "n": len(doc.get("deletes", []))}
    if name in ("find", "aggregate", "listCollections", "listIndexes"):
        coll = doc.get(name)
        return {"ok": 1, "cursor": {"id": 0, "ns": "%s.%s" % (doc.get("$db"), coll), "firstBatch": []}}
    if name == "count":
        return {"ok": 1, "n": 0}
    if name == "distinct":
        return {"ok": 1, "values": []}
    if name == "findAndModify":
        return {"ok": 1, "value": None, "lastErrorObject": {"n": 0, "updatedExisting": False}}
    return {"ok": 1}

def handler(request):
    doc = request.doc
    name = next(iter(doc), None)
    op = "msg" if isinstance(request, OpMsg) else "query"
    emit({
        "command": json.loads(json_util.dumps(doc, json_options=CANONICAL_JSON_OPTIONS)),
        "db": request.namespace.split(".")[0] if request.namespace else None,
        "flags": request.flags or 0,
        "op": op,
        "client": request.client_port,
    })
    if op == "msg" and (request.flags or 0) & OP_MSG_FLAGS["moreToCome"]:
        return True
    with lock:
        queue = scripts.get(name)
        reply = None
        if queue:
            reply = queue.popleft() if len(queue) > 1 else queue[0]
    if reply is None:
        reply = default_reply(name, doc)
    request.replies(reply)
    return True

server = MockupDB(port=port)
server._address = ("127.0.0.1", port)
server.autoresponds(handler)
server.run()
emit({"port": port})

for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    msg = json.loads(line)
    if "script" in msg:
        replies = [json_util.loads(json.dumps(r), json_options=CANONICAL_JSON_OPTIONS) for r in msg["replies"]]
        with lock:
            scripts[msg["script"]] = collections.deque(replies)
    elif "reset" in msg:
        with lock:
            scripts.clear()
    elif "sync" in msg:
        emit({"sync": msg["sync"]})
server.stop()
