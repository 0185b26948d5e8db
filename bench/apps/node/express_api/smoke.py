"""Checks for express_api: Express routes, lodash results, moment in French, axios, pino's file transport.

moment's French month and day names prove its locale files were loaded (a pruner
that drops them makes moment fall back to English without an error); /self-check
makes axios call this server's own 127.0.0.1 endpoints; the log file proves that
pino's transport worker thread started and wrote.
"""
import json
import tempfile
import uuid
from pathlib import Path

from smokelib import expect, free_port


def smoke(s) -> None:
    port = free_port()
    marker = f"bench-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory(prefix="bench-express-api-") as tmp:
        log_file = Path(tmp) / "logs" / "app.log"  # the transport creates logs/ (mkdir: true)
        with s.serve(port, env={"LOG_FILE": str(log_file)}) as url:
            health = s.get(url + "/health")
            expect(health.status == 200, f"/health: {health.status} {health.text}")
            expect(health.json() == {"status": "ok", "locale": "fr"},
                   f"/health (moment.locale() is not fr: its locale file was not loaded?): {health.text}")

            summary = s.get(url + "/orders/summary").json()
            expect(summary == {
                "customers": ["alice", "bob"],
                "byCustomer": {"alice": {"count": 2, "total": 37.75}, "bob": {"count": 1, "total": 12}},
                "largest": 1,
                "months": ["15 mars 2024", "1 juillet 2024", "24 décembre 2024"],
            }, f"/orders/summary: {summary}")

            date = s.get(url + "/date/2024-03-15T00:00:00Z").json()
            expect(date == {"long": "vendredi 15 mars 2024", "relative": "il y a 10 mois"},
                   f"/date in French: {date}")
            bad = s.get(url + "/date/yesterday")
            expect(bad.status == 400 and bad.json() == {"error": "not an ISO date"}, f"bad date: {bad.text}")

            chunks = s.post(url + "/orders/chunk", {"items": [3, 1, 3, 2, 1]}).json()
            expect(chunks == {"chunks": [[3, 1], [2]], "camel": "benchExpressApi"}, f"/orders/chunk: {chunks}")
            not_list = s.post(url + "/orders/chunk", {"items": "x"})
            expect(not_list.status == 400, f"/orders/chunk accepted a string: {not_list.text}")

            via_axios = s.get(url + "/self-check")
            expect(via_axios.status == 200, f"/self-check: {via_axios.status} {via_axios.text}")
            got = via_axios.json()
            expect(got == {"uri": f"http://127.0.0.1:{port}/orders/summary?via=axios",
                           "health": {"status": "ok", "locale": "fr"}, "largest": 1,
                           "contentType": "application/json; charset=utf-8"}, f"/self-check: {got}")

            logged = s.post(url + "/log", {"message": marker}).json()
            expect(logged == {"logged": marker, "file": str(log_file)}, f"/log: {logged}")
            s.wait_for(lambda: marker in log_file.read_text(), f"{marker} in the pino log file {log_file}")

        records = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
        mine = [r for r in records if r.get("marker") == marker]
        expect(len(mine) == 1 and mine[0]["level"] == 40 and mine[0]["msg"] == "client message"
               and mine[0]["app"] == "express_api", f"log record: {mine}")
        expect(any(r.get("msg") == "listening" and r.get("port") == port for r in records),
               f"no 'listening' record in {log_file}: {records[:3]}")
        expect(any(r.get("url") == "/self-check" and r.get("msg") == "request" for r in records),
               "the request log has no /self-check")
