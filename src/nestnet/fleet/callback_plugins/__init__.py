"""Ansible callback plugins shipped with nestnet (loaded by Ansible from this directory)."""
