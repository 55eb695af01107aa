"""The PASS/FAIL/SKIP report of the checking scripts (scripts/verify,
scripts/httparena-validate): one line per check on stdout, and the counts
their last line and exit status come from."""


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print("PASS %s" % what, flush=True)
        else:
            self.failed += 1
            print("FAIL %s%s" % (what, ": " + detail if detail else ""), flush=True)
        return ok

    def skip(self, what, why):
        print("SKIP %s: %s" % (what, why), flush=True)
