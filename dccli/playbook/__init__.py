"""`dccli provision`: a documented subset of Ansible's playbook dialect, one remote session per host per play."""
