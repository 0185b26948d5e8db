"""Checks for ts_s3_sharp: the tsc-built service signs S3 requests offline, resizes with sharp, hashes with bcrypt.

The presigned URL's SigV4 signature is recomputed here from the fake secret; the
PUT the S3 client "sends" (to an in-process handler: nothing leaves the machine)
must carry the exact CRC32 and SHA-256 of the body; sharp must report the exact
size, format and corner pixels of an image it made and resized; bcrypt must
hash, verify and reject, and verify the OpenBSD test vector.
"""
import base64
import hashlib
import hmac
import json
import urllib.parse
import zlib

from smokelib import expect, free_port

SECRET = "bench/secret/key"
REGION = "eu-west-3"


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def sigv4_presign_ok(url: str) -> bool:
    """Recompute the AWS SigV4 query signature of a presigned S3 GET."""
    parts = urllib.parse.urlsplit(url)
    params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    given = dict(params)["X-Amz-Signature"]
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(params) if k != "X-Amz-Signature")
    request = "\n".join(["GET", parts.path, query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"])
    amz_date = dict(params)["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = ("AWS4" + SECRET).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), given)


def smoke(s) -> None:
    port = free_port()
    with s.serve(port) as url:
        health = s.get(url + "/health")
        expect(health.status == 200, f"/health: {health.status} {health.text}")
        info = health.json()
        expect(info["status"] == "ok" and info["sharp"].startswith("0.") and info["vips"] == "string",
               f"/health: {info}")

        signed = s.get(url + "/s3/presign?key=reports/2024%20Q1.csv")
        expect(signed.status == 200, f"/s3/presign: {signed.status} {signed.text}")
        presigned = signed.json()["url"]
        expect(presigned.startswith("http://127.0.0.1:1/bench-bucket/reports/2024%20Q1.csv?"), presigned)
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(presigned).query))
        expect({k: params.get(k) for k in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                                           "X-Amz-SignedHeaders", "x-id")} == {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"AKIDBENCHEXAMPLE/20240102/{REGION}/s3/aws4_request",
            "X-Amz-Date": "20240102T030405Z", "X-Amz-Expires": "900",
            "X-Amz-SignedHeaders": "host", "x-id": "GetObject"}, f"presigned URL parameters: {params}")
        expect(sigv4_presign_ok(presigned), f"the SigV4 signature does not verify: {presigned}")

        text = "hello bench"
        sent = json.dumps(text).encode()  # Session.request sends its body as JSON
        put = s.request("POST", url + "/s3/put?key=notes/hello.txt", text)
        expect(put.status == 200, f"/s3/put: {put.status} {put.text}")
        crc = base64.b64encode(zlib.crc32(sent).to_bytes(4, "big")).decode()
        expect(put.json() == {
            "method": "PUT", "path": "/bench-bucket/notes/hello.txt", "host": "127.0.0.1:1",
            "contentType": "text/plain", "contentLength": str(len(sent)), "checksumCrc32": crc,
            "contentSha256": hashlib.sha256(sent).hexdigest(), "authorization": "AWS4-HMAC-SHA256",
            "etag": '"5d41402abc4b2a76b9719d911017c592"', "versionId": "v-bench-1",
        }, f"the serialized PutObject request: {put.text}")

        image = s.get(url + "/image?width=32&height=24")
        expect(image.status == 200, f"/image: {image.status} {image.text}")
        expect(image.json() == {
            "source": {"format": "png", "width": 64, "height": 48},
            "format": "png", "width": 32, "height": 24, "channels": 3, "pngSignature": "PNG",
            "topLeft": [0, 0, 255], "bottomRight": [255, 0, 0],
            "webp": {"format": "webp", "width": 32, "height": 24},
        }, f"/image: {image.text}")
        bad = s.get(url + "/image?width=0")
        expect(bad.status == 500 and "1..512" in bad.text, f"/image?width=0: {bad.status} {bad.text}")

        pw = s.post(url + "/password", {"password": "correct horse battery staple"})
        expect(pw.status == 200 and pw.json() == {"prefix": "$2b$04$", "length": 60, "matches": True,
                                                  "wrongMatches": False, "knownVector": True},
               f"/password: {pw.status} {pw.text}")
