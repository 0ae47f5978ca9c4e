"""A loopback S3-compatible endpoint over the local store, for jobs that call S3 themselves.

Many real scripts use boto3 inside the job (AWS's model-build seed downloads
its own input). In SageMaker they reach S3 with the job's role; here a job
gets ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` pointing at this server and
a key pair that only this server accepts, never the caller's credentials.
What a job writes is in the store at once, for later steps.

The server speaks the part of the S3 REST API that boto3's client and
resource use for objects: GET (with Range), HEAD, PUT (also aws-chunked
bodies), DELETE, ListObjects(V2), HeadBucket/GetBucketLocation and multipart
uploads (what ``upload_file`` does above 8 MB). Requests signed with another
access key get 403. It listens on 127.0.0.1 only, for one execution.
"""
from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import quote
from xml.sax.saxutils import escape

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from pipelines.local.storage import Boto3Store, Store

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


class S3Endpoint:
    """A WSGI app serving ``store`` as S3 to requests signed with `access_key`."""

    def __init__(self, store: Store, access_key: str, secret_key: str, region: str):
        self.store = store
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.parts = Path(tempfile.mkdtemp(prefix="s3-endpoint-parts-"))
        self.url = ""

    def environment(self) -> dict[str, str]:
        """What a job's environment needs to reach this endpoint (the host's AWS settings are already gone)."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ENDPOINT_URL_S3": self.url, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region}

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._handle(request)
        except FileNotFoundError:
            response = _error(404, "NoSuchKey", "The specified key does not exist.")
        except ValueError as exc:
            response = _error(400, "InvalidArgument", str(exc))
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        match = _CREDENTIAL.search(request.headers.get("Authorization", ""))
        if not match or match.group(1) != self.access_key:
            return _error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        bucket, _, key = request.path.lstrip("/").partition("/")
        if not bucket:
            return _xml("ListAllMyBucketsResult", "<Buckets></Buckets>")
        uri = f"s3://{bucket}/{key}"
        args = request.args
        if not key:
            if request.method == "HEAD":
                return Response(status=200)
            if "location" in args:
                return _xml("LocationConstraint", escape(self.region))
            if request.method == "GET":
                return self._list(bucket, args)
            return _error(405, "MethodNotAllowed", f"{request.method} on a bucket is not supported locally")
        if "uploadId" in args or "uploads" in args:
            return self._multipart(request, bucket, key, uri)
        if request.method in ("GET", "HEAD"):
            return self._get(request, uri)
        if request.method == "PUT":
            if request.headers.get("x-amz-copy-source"):
                source = request.headers["x-amz-copy-source"].lstrip("/")
                self.store.put_bytes(uri, self.store.get_bytes(f"s3://{source}"))
                return _xml("CopyObjectResult", "<ETag>&quot;copied&quot;</ETag>")
            data = _body(request)
            self.store.put_bytes(uri, data)
            return Response(status=200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})
        if request.method == "DELETE":
            self.store.delete(uri)
            return Response(status=204)
        return _error(405, "MethodNotAllowed", f"{request.method} is not supported locally")

    def _get(self, request: Request, uri: str) -> Response:
        data = self.store.get_bytes(uri)
        headers = {"ETag": f'"{hashlib.md5(data).hexdigest()}"', "Accept-Ranges": "bytes",
                   "Last-Modified": "Thu, 01 Jan 1970 00:00:00 GMT"}
        status = 200
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("Range", ""))
        if ranged:
            start = int(ranged.group(1) or 0)
            end = min(int(ranged.group(2)) if ranged.group(2) else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], 206
        headers["Content-Length"] = str(len(data))
        body = b"" if request.method == "HEAD" else data
        response = Response(body, status=status, headers=headers, content_type="binary/octet-stream")
        response.automatically_set_content_length = False
        return response

    def _list(self, bucket: str, args) -> Response:
        prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
        keys = [uri[len(f"s3://{bucket}/"):] for uri in self.store.list(f"s3://{bucket}/{prefix}")]
        start = args.get("continuation-token") or args.get("start-after") or args.get("marker") or ""
        keys = [k for k in keys if k > start]
        limit = int(args.get("max-keys", 1000))
        contents, prefixes = [], []
        for key in keys:
            if delimiter and delimiter in key[len(prefix):]:
                common = key[:len(prefix) + key[len(prefix):].index(delimiter) + len(delimiter)]
                if common not in prefixes:
                    prefixes.append(common)
                continue
            contents.append(key)
        truncated = len(contents) > limit
        contents = contents[:limit]
        body = [f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents)}</KeyCount>",
                f"<MaxKeys>{limit}</MaxKeys><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"]
        if truncated:
            body.append(f"<NextContinuationToken>{escape(contents[-1])}</NextContinuationToken>"
                        f"<NextMarker>{escape(contents[-1])}</NextMarker>")
        for key in contents:
            data = self.store.get_bytes(f"s3://{bucket}/{key}")
            body.append(f"<Contents><Key>{escape(key)}</Key><Size>{len(data)}</Size>"
                        f"<ETag>&quot;{hashlib.md5(data).hexdigest()}&quot;</ETag>"
                        "<LastModified>1970-01-01T00:00:00.000Z</LastModified><StorageClass>STANDARD</StorageClass>"
                        "</Contents>")
        body += [f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes]
        return _xml("ListBucketResult", "".join(body))

    def _multipart(self, request: Request, bucket: str, key: str, uri: str) -> Response:
        if request.method == "POST" and "uploads" in request.args:
            upload = secrets.token_hex(8)
            (self.parts / upload).mkdir()
            return _xml("InitiateMultipartUploadResult", f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
                                                         f"<UploadId>{upload}</UploadId>")
        upload = self.parts / re.sub(r"[^0-9a-f]", "", request.args["uploadId"])
        if not upload.is_dir():
            return _error(404, "NoSuchUpload", "The specified upload does not exist.")
        if request.method == "PUT":
            data = _body(request)
            (upload / f"{int(request.args['partNumber']):05d}").write_bytes(data)
            return Response(status=200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})
        if request.method == "POST":
            self.store.put_bytes(uri, b"".join(p.read_bytes() for p in sorted(upload.iterdir())))
            shutil.rmtree(upload)
            return _xml("CompleteMultipartUploadResult", f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
                                                         f"<ETag>&quot;{quote(key)}&quot;</ETag>")
        shutil.rmtree(upload)
        return Response(status=204)


def _body(request: Request) -> bytes:
    """The object's bytes; aws-chunked bodies (boto3's streaming uploads) are decoded."""
    data = request.get_data()
    if "aws-chunked" not in request.headers.get("Content-Encoding", "") and \
            not request.headers.get("x-amz-content-sha256", "").startswith("STREAMING-"):
        return data
    out, pos = bytearray(), 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[end + 2:end + 2 + size]
        pos = end + 2 + size + 2


def _xml(root: str, inner: str) -> Response:
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{_NS}">{inner}</{root}>',
                    content_type="application/xml")


def _error(status: int, code: str, message: str) -> Response:
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>{escape(message)}</Message></Error>", status=status, content_type="application/xml")


class _QuietHandler(WSGIRequestHandler):
    """No access log: a job's S3 calls would otherwise interleave with the runner's progress."""

    def log_request(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(store: Store, region: str) -> Iterator[S3Endpoint]:
    """An endpoint over `store` on a free loopback port, with a fresh key pair, for the block's duration."""
    endpoint = S3Endpoint(store, f"LOCAL{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30), region)
    server = make_server("127.0.0.1", 0, endpoint, threaded=True, request_handler=_QuietHandler)
    endpoint.url = f"http://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve_forever, name="s3-endpoint", daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(endpoint.parts, ignore_errors=True)


@contextlib.contextmanager
def job_access(store: Store, region: str) -> Iterator[dict[str, str]]:
    """The S3 settings every job of an execution gets: this endpoint over a local store; for a store
    on another S3 endpoint (moto, MinIO), that endpoint with throwaway keys; for AWS's own S3, none
    (a job never gets the caller's credentials, and assuming the step's role is not emulated)."""
    if not isinstance(store, Boto3Store):
        with serve(store, region) as endpoint:
            yield endpoint.environment()
        return
    url = store.client.meta.endpoint_url
    if "amazonaws.com" in url:
        yield {}
        return
    yield {"AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_S3": url, "AWS_ACCESS_KEY_ID": "local-job",
           "AWS_SECRET_ACCESS_KEY": "local-job", "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
