"""dccli status: the cluster at a glance."""
