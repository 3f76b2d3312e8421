"""Host facts (pyinfra's shape): the helper collects raw sources, pure functions here parse them."""
