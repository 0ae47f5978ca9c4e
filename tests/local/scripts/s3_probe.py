"""A processing script that reports what S3 access its job has, and uses it if it can."""
import json
import os
import sys

report = {key: os.environ.get(key) for key in ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")}
if report["AWS_ENDPOINT_URL_S3"]:
    import boto3

    s3 = boto3.client("s3")
    s3.put_object(Bucket="bkt", Key="from-job/hello.txt", Body=b"written by the job")
    report["listed"] = [o["Key"] for o in s3.list_objects_v2(Bucket="bkt", Prefix="raw/")["Contents"]]
with open(os.path.join(sys.argv[1], "report.json"), "w") as f:
    json.dump(report, f)
