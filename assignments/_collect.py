"""The student side of ``assignments/secure.py``: runs inside the grading sandbox (``assignments/sandbox.py``)
beside the student-side package, never beside the grader.

    python -I -S _collect.py NOTEBOOK [SITE_DIR ...]

Protocol, one JSON line each way over the process's original stdin/stdout (the notebook's own prints go to
stderr): run every code cell; write ``{"ready": ..., "cell_errors": [...]}``; read the job
``{"questions": [{"name", "function", "allow", "forbidden", "instances"}], "watch": [...]}``; call each graded
function on each instance and write ``{"results": {q: [encoded output]}, "violations": {q: [...]}}``.
The instances arrive only after the cells have run; outputs are converted to plain numbers and arrays while
the trace is still armed (an object whose ``__array__`` or ``__float__`` computes something runs under it).

Nothing here is trusted: the notebook runs in this process and can change anything in it. The grader compares
and scores in its own process, and what must not run is simply absent from the sandbox. The trace below
(advisory) reports a call of a watched package's function that is not allowed, judged at the first student
frame: the outermost watched frame below it must be an allowed name.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

WATCHED = {"sys.setprofile", "sys.settrace", "threading.setprofile", "threading.settrace", "_thread.start_new_thread",
           "subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn"}
CALL_SECONDS = 20  # per graded call
MAX_SIZE = 10**6  # numbers per output array


def encode(x, depth: int = 0):
    """JSON-able form of instances and outputs: arrays (float or integer), numbers, sequences, dicts and
    TabularMDPs (``json`` keeps NaN and infinities)."""
    import numpy as np

    if depth > 6:
        return {"err": "nested too deeply"}
    mdp = sys.modules.get("tabular")
    if mdp is not None and isinstance(x, getattr(mdp, "TabularMDP", ())):
        return {"mdp": {"P": encode(x.dense_P()), "R": encode(x.R), "p0": encode(x.p0), "gamma": float(x.gamma),
                        "terminal": encode(np.asarray(x.terminal, dtype=np.int64))}}
    if isinstance(x, dict):
        return {"d": {str(k): encode(v, depth + 1) for k, v in list(x.items())[:64]}}
    if isinstance(x, (list, tuple)):
        return {"l": [encode(v, depth + 1) for v in list(x)[:64]]}
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
        return {"i": [int(v) for v in x.ravel()[:MAX_SIZE]], "s": [int(n) for n in x.shape]}
    try:
        a = np.array(x, dtype=float)
    except (TypeError, ValueError):
        return {"err": f"not numeric: {type(x).__name__}"}
    if a.size > MAX_SIZE:
        return {"err": "output too large"}
    return {"a": [float(v) for v in a.ravel()], "s": [int(n) for n in a.shape]}


def decode(x, depth: int = 0):
    """The inverse of :func:`encode`, run by the grader on what came back: plain floats, integers, lists and
    dicts only (``{"err": ...}`` stays a dict: the grader reports it). ``ValueError`` on anything else."""
    import numpy as np

    if depth > 8:
        raise ValueError("nested too deeply")
    if isinstance(x, bool):
        return x
    if not isinstance(x, dict):
        raise ValueError(f"unexpected {type(x).__name__}")
    if set(x) == {"err"}:
        return {"err": str(x["err"])[:300]}
    if set(x) == {"mdp"}:
        from tabular import TabularMDP

        m = x["mdp"]
        return TabularMDP(decode(m["P"], depth + 1), decode(m["R"], depth + 1), decode(m["p0"], depth + 1),
                          float(m["gamma"]), terminal=np.asarray(decode(m["terminal"], depth + 1), dtype=bool))
    if set(x) == {"d"} and isinstance(x["d"], dict):
        return {str(k): decode(v, depth + 1) for k, v in list(x["d"].items())[:64]}
    if set(x) == {"l"} and isinstance(x["l"], list):
        return [decode(v, depth + 1) for v in x["l"][:64]]
    if set(x) in ({"a", "s"}, {"i", "s"}):
        vals, shape = x.get("a", x.get("i")), x["s"]
        kind = float if "a" in x else int
        if not (isinstance(vals, list) and isinstance(shape, list) and len(vals) <= MAX_SIZE and len(shape) <= 8
                and all(type(n) is int and 0 <= n <= MAX_SIZE for n in shape)
                and all(type(v) in (kind, int) for v in vals)):
            raise ValueError("malformed array")
        a = np.asarray(vals, dtype=np.float64 if kind is float else np.int64).reshape(shape)
        return (float(a) if a.ndim == 0 else a) if kind is float else a
    raise ValueError("malformed output")


def _cells(path: str) -> list[str]:
    """The notebook's code cells, without magics, shell lines and Otter's own lines."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    out = []
    for c in nb.get("cells", []):
        if not isinstance(c, dict) or c.get("cell_type") != "code":
            continue
        src = c.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        lines = [l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))]
        if any("otter" in l or "grader.check" in l for l in lines):  # the Otter init cell and the public checks
            lines = [l for l in lines if "grader" not in l and "otter" not in l]
        out.append("\n".join(lines))
    return out


def _protocol() -> tuple:
    """The original stdin/stdout, kept for the grader; fd 0 becomes /dev/null and fd 1 goes to stderr."""
    proto_in, proto_out = os.fdopen(os.dup(0), "r"), os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    return proto_in, proto_out


def _send(out, obj) -> None:
    out.write(json.dumps(obj) + "\n")
    out.flush()


def main(argv: list[str]) -> int:
    nb_path, *site = argv
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [here]  # python -I leaves the script's folder out
    sys.path += site
    proto_in, proto_out = _protocol()
    import numpy as np  # noqa: F401  (imported before the student's code, as the templates do)

    for name in ("tabular",):  # the student-side package, loaded before the notebook can replace it
        if os.path.isdir(os.path.join(here, name)):
            __import__(name)
    state = {"q": None}
    violations: dict[str, set] = {}

    def audit(event, args):
        if state["q"] is not None and event in WATCHED:
            violations.setdefault(state["q"], set()).add(f"{event} during the graded call")

    sys.addaudithook(audit)

    def on_alarm(signum, frame):
        raise TimeoutError(f"took more than {CALL_SECONDS} s")

    signal.signal(signal.SIGALRM, on_alarm)
    cell_seconds = int(os.environ.get("MODELADV_CELL_SECONDS", 120))  # an endless cell costs this only
    ns: dict = {"__name__": "__main__"}
    cell_errors = []
    for i, src in enumerate(_cells(nb_path)):
        signal.alarm(cell_seconds)
        try:
            exec(compile(src, f"<cell {i}>", "exec"), ns)
        except BaseException as e:  # a broken or endless cell is the student's problem, not the grader's
            cell_errors.append(f"cell {i}: {type(e).__name__}: {e}"[:300])
        finally:
            signal.alarm(0)
    _send(proto_out, {"ready": True, "cell_errors": cell_errors[:50]})
    job = json.loads(proto_in.readline())
    results = {}
    for q in job["questions"]:
        name, allow = q["name"], set(q["allow"])
        dirs = tuple([os.path.join(here, p) + os.sep for p in q["forbidden"]] + list(job.get("watch", [])))
        func = ns.get(q["function"])
        outs = []
        for enc_args in q["instances"]:
            if not callable(func):
                outs.append({"err": f"{q['function']} is not defined (did its cell run?)"})
                continue
            args = _instance_args(enc_args)
            root = sys._getframe()

            def hook(frame, event, arg, root=root, allow=allow, name=name, dirs=dirs):
                if event != "call":
                    return
                code = frame.f_code
                if not code.co_filename.startswith(dirs) or code.co_name == "<module>" or code.co_qualname == "__getattr__":
                    return  # module code, or the student-side package's "not available while grading"
                f = frame  # up to the outermost watched frame of this chain: the one a student frame called
                while f.f_back is not None and f.f_back is not root and f.f_back.f_code.co_filename.startswith(dirs):
                    f = f.f_back
                c = f.f_code
                if c.co_qualname in allow or c.co_qualname.split(".")[0] in allow:
                    return
                pkg = os.path.basename(os.path.dirname(c.co_filename.rstrip(os.sep))) or "?"
                violations.setdefault(name, set()).add(f"{pkg}.{c.co_qualname}")

            signal.alarm(CALL_SECONDS)
            try:
                threading.setprofile(hook)  # threads the student's call starts are traced too
                sys.setprofile(hook)
                state["q"] = name  # armed: from here on a trace change is the student's
                out = encode(func(*args))  # converted under the trace
                state["q"] = None
                if sys.getprofile() is not hook:
                    violations.setdefault(name, set()).add("the trace was replaced")
                sys.setprofile(None)
                outs.append(out)
            except BaseException as e:
                state["q"] = None
                sys.setprofile(None)
                outs.append({"err": f"{type(e).__name__}: {e}"[:300]})
            finally:
                state["q"] = None
                threading.setprofile(None)
                signal.alarm(0)
        results[name] = outs
    _send(proto_out, {"results": results, "violations": {k: sorted(v) for k, v in violations.items()}})
    os._exit(0)


def _instance_args(enc_args) -> list:
    """Instances as the grader sent them: arrays, numbers, lists, dicts, and TabularMDPs of the student-side
    package."""
    import numpy as np

    def dec(x):
        if isinstance(x, dict):
            if "mdp" in x:
                from tabular import TabularMDP

                m = x["mdp"]
                return TabularMDP(dec(m["P"]), dec(m["R"]), dec(m["p0"]), float(m["gamma"]),
                                  terminal=np.asarray(dec(m["terminal"]), dtype=bool))
            if "d" in x:
                return {k: dec(v) for k, v in x["d"].items()}
            if "l" in x:
                return [dec(v) for v in x["l"]]
            if "a" in x:
                a = np.asarray(x["a"], dtype=float).reshape(x["s"])
                return a if a.ndim else float(a)
            if "i" in x:
                return np.asarray(x["i"], dtype=np.int64).reshape(x["s"])
        return x

    return [dec(v) for v in enc_args["l"]]


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
