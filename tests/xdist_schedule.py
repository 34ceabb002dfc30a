"""How the parallel test processes share the files (`bin/test`: `--dist loadfile`, each process takes whole
files, the costliest first).

A few files spend their time waiting on processes they start: a crash-test deployment (test_recovery), the demo
(test_demo), gunicorn with a worker and beat (test_deployment). Their test process computes little, but a
process that runs them and then takes ordinary files pays again for what each process makes once (its synced
mirror, chromium, compiled templates, imported views). So with three processes or more, one process takes only
these files (the costliest first, as conftest orders every file) and stops when they are done; the others take
every other file, and take a waiting file too only when nothing else is left (no file waits on one busy process
while others are free). In the quick loop (`-m "not slow and not browser"`) the waiting files hold only the
deployment's two quick tests: that process runs them and stops, and three processes run the rest (59-60 s either
way on the fifteenth machine).

Fifteenth machine, whole runs with bench/suite.py: four processes, each taking any file, kept the cores busy for
361 s of CPU (8 s idle, 3 min 3 s); with one of them taking the waiting files, 345 s (14 s idle, 2 min 59 s). Three
processes each taking any file needed 335 s but left the cores idle 31 s while two of the three waited at once."""
from xdist.scheduler import LoadFileScheduling

WAITING_FILES = ("tests/test_recovery.py", "tests/test_demo.py", "tests/test_deployment.py")
# Fewer processes than this: every process takes any file.
DEDICATE_FROM = 3


class WaitingFilesApart(LoadFileScheduling):
    def __init__(self, config, log=None):
        super().__init__(config, log)
        self.waiting_node = None

    def _next_scope(self, node):
        """The file `node` should take next, or None (the node then stops). The first node to ask while waiting
        files are queued becomes the one that takes them."""
        waiting = [scope for scope in self.workqueue if scope in WAITING_FILES]
        if self.waiting_node is None and waiting and len(self.nodes) >= DEDICATE_FROM:
            self.waiting_node = node
        if node is self.waiting_node:
            return waiting[0] if waiting else None
        others = [scope for scope in self.workqueue if scope not in WAITING_FILES]
        return (others or waiting or [None])[0]

    def _assign_work_unit(self, node):
        # xdist hands out the queue's first file: put this node's next one there.
        scope = self._next_scope(node)
        if scope is None:
            node.shutdown()
            return
        self.workqueue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)

    def remove_node(self, node):
        if node is self.waiting_node:  # it crashed: the next process to ask takes its place
            self.waiting_node = None
        return super().remove_node(node)

    def _reschedule(self, node):
        # xdist stops a node only when the whole queue is empty; here also when nothing in it is this node's.
        if not node.shutting_down and self.workqueue and self._next_scope(node) is None:
            node.shutdown()
            return
        super()._reschedule(node)
