"""Module code that runs ON the managed host during `dccli provision` (stdlib only, Python 3.6+).

Not part of the everyday helper (dccli/remote/steps/ is sent with every `facts`/`health` session):
these files travel only in a provisioning session, concatenated after dccli/remote/helper.py's core
(handler, emit, run, read_text, which) and ending with pb_main(). See dccli/playbook/channel.py.
"""
