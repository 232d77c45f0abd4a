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
