"""An in-memory API server behind the operator's own `Kube` client, for the fast tier.

`FakeKube` is the real `spy_operator.kube.Kube` with its HTTP transport (`_send`)
replaced by `FakeApiServer.request`, so everything above the wire (the leader check on
writes, re-login on 401, error parsing into `ApiError`) is the operator's own code.
The server answers what kube-apiserver answers for the requests the operator makes:

- objects with uid, creationTimestamp, resourceVersion (one counter, as etcd's) and a
  generation that moves only when something outside metadata and status changes;
  a write that changes nothing keeps the resourceVersion and emits no watch event;
- server-side apply with field ownership per (manager, operation), in the real
  `managedFields` / FieldsV1 shape: force takes fields over, fields the applier
  stops sending are removed unless another manager owns them, fields of other
  managers stay (the reason foreign edits survive an apply), associative lists
  (containers, env, ports, ...) merge by key; merge patches and PUTs are Update
  operations that take over the fields they change;
- `status` and `scale` subresources; 404/409 (AlreadyExists, Conflict on a stale
  resourceVersion)/422 (Deployment strategy, negative replicas) as Status objects;
- mutating webhooks (RFC 6902 answers; the approval webhook) and validating
  admission hooks (a ValidatingAdmissionPolicy refuses with 403); injectable
  faults per verb/path/user: any status with a Retry-After, lost connections,
  timeouts, writes that land but whose reply is lost, and requests that hang until
  an event is set;
- a watch event log with compaction (410 Gone) and a tiny controller-manager that
  reports Deployment rollouts and runs StatefulSet pods (revision label, ready at
  once; OnDelete keeps the old revision running until the pod is deleted);
- deletion with finalizers, the garbage collector, and orphaning.

Used by tests/operator/fast (and free for benchmarks and demos). It never opens a
socket. What it does not model: RBAC, label selectors on lists, CRD schema
validation, Deployment pods, namespaces (every namespace exists).

The package: objects.py (keys, records, errors), fields.py (field ownership and
patches), store.py (the write path, deletion, the watch log), controllers.py
(defaulting, validation, the controller-manager), server.py (the wire and the verbs;
FakeKube).
"""

from .fields import field_paths, fields_v1
from .objects import AdmissionRequest, Fault, GoneError, Request, WatchEvent
from .server import FakeApiServer, FakeKube

__all__ = [
    "AdmissionRequest",
    "FakeApiServer",
    "FakeKube",
    "Fault",
    "GoneError",
    "Request",
    "WatchEvent",
    "field_paths",
    "fields_v1",
]
