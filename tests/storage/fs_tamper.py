"""Filesystem tampering helpers, shared with the contract suite."""

from test_filesystem_specific import copy_body_file, tamper_checkpoint_file, tamper_record_file  # noqa: F401
