"""Process state for the black-box tests' Python snippets."""


def running(pid):
    """True while `pid` exists and has not exited: a zombie (nbdcage ended,
    its parent shell has not reaped it yet) counts as ended."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
