"""nestnet's AWS side (issue 25). Cheap to import: boto3 and moto are imported where they are used.

    spec.py      the spec's ``aws:`` section
    ec2.py       the seam: the only module importing boto3; EC2's errors -> AwsError / ServiceError
    desired.py   pure: the desired EC2 state from the Plan, the diff against what EC2 shows
    reconcile.py observe -> diff -> apply (one read before each write, limits before any write)
    export.py    Terraform and an AWS CLI script
    emulator/    moto's server behind HTTPS, with what moto lacks
"""

TITLE = "AWS"  # in words, in help texts and messages
CLI_HELP = "Reconcile ENI prefixes, routes and source/dest checks in EC2; export; run its emulator."  # `nestnet aws`
# Its environment variables (name, the parser's name in nestnet.env, help), checked at start-up.
ENV = (
    ("NESTNET_AWS_MAX_ATTEMPTS", "attempts", "tries of one EC2 call, throttling and 5xx retried by the SDK (default 8)"),
)
# `check --aws` / `doctor --aws`: read EC2 instead of assuming the plan (the flag, what and how).
READ = ("--aws", "EC2 (ENI prefixes and addresses, routes to ENIs, source/destination checks) through boto3 "
        "instead of assuming the plan; AWS's credential chain and AWS_ENDPOINT_URL as for `nestnet aws`.")
