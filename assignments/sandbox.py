"""The sandbox a submitted notebook runs in while it is graded (``assignments/secure.py`` starts it).

What the notebook's process can see and do (Linux, ``bwrap`` from Debian's ``bubblewrap`` plus ``setpriv``):

* its own PID, network, IPC, UTS and cgroup namespaces: no network but loopback, and a fresh ``/proc`` that
  shows the sandbox's processes only (not the grader's command line or environment);
* a private root holding, read-only, only ``/usr``, the Python installation and the virtual environment's
  ``site-packages`` (with any installed copy of the course packages hidden), the submitted notebook
  (``/sandbox/submission``) and the *student-side package* (``/sandbox/lib``); a small writable ``/tmp``;
* runs as ``nobody`` (uid 65534 outside the sandbox too) without capabilities, with no-new-privileges and,
  on x86-64, a seccomp filter that refuses ``ptrace``, mounts, new namespaces, kernel keyrings, BPF and
  ``io_uring``;
* an empty environment but for a few fixed variables: the course seed is never in it, nor in any argument or
  file of the sandbox.

The student-side package is a ``tabular`` that holds only the functions an assignment allows (and the private
helpers those call), cut out of the real package's source: whatever the notebook does inside its process,
the reference implementations of the graded functions are not there to reach.

Where ``bwrap`` or ``setpriv`` is missing or namespaces cannot be made, :func:`status` says why in one line,
and the grader refuses untrusted work unless told ``--unsafe``.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import platform
import shutil
import struct
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOBODY = 65534
LIB, SUBMISSION = "/sandbox/lib", "/sandbox/submission"
NOTEBOOK = f"{SUBMISSION}/notebook.ipynb"
TMP_BYTES = 256 << 20
#: packages (and the repository) never visible inside the sandbox, wherever they are installed
HIDDEN_PACKAGES = ("tabular", "deep", "modeladv", "lab", "gridworld", "assignments")

__all__ = ["status", "student_package", "command", "describe", "HIDDEN_PACKAGES"]


# ---- the student-side package: the allowed functions cut out of the real source --------------------------------
def _module_path(modname: str) -> tuple[Path, bool]:
    spec = importlib.util.find_spec(modname)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot find module {modname}")
    return Path(spec.origin), spec.submodule_search_locations is not None


@functools.lru_cache(maxsize=None)
def _parse(modname: str) -> tuple[ast.Module, dict, bool]:
    """The module's tree, its top-level names ``{name: (node, alias | None)}`` and whether it is a package."""
    path, is_pkg = _module_path(modname)
    tree = ast.parse(path.read_text(), str(path))
    names: dict = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = (node, None)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names[n.id] = (node, None)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = (node, a)
    return tree, names, is_pkg


def _resolve(modname: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """The absolute module name of a relative ``from ... import``."""
    base = modname.split(".") if is_pkg else modname.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _deps(modname: str, node: ast.AST) -> list[tuple[str, str]]:
    """``(module, name)`` pairs a top-level definition needs: names it uses that the module defines or imports,
    and what its own relative imports bring in. Annotations are skipped (``from __future__ import annotations``
    keeps them unevaluated; the package's modules all have it)."""
    _, names, is_pkg = _parse(modname)
    skip = set()
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            skip.update(id(a.annotation) for a in n.args.args + n.args.kwonlyargs + n.args.posonlyargs
                        if a.annotation is not None)
            if n.returns is not None:
                skip.add(id(n.returns))
        elif isinstance(n, ast.AnnAssign):
            skip.add(id(n.annotation))
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if id(n) in skip:
            continue
        if isinstance(n, ast.Name) and n.id in names:
            out.append((modname, n.id))
        elif isinstance(n, ast.ImportFrom) and n.level > 0 and n is not node:
            src = _resolve(modname, is_pkg, n)
            out += [(src, a.name) for a in n.names]
        stack.extend(ast.iter_child_nodes(n))
    return out


def closure(package: str, allowed: tuple[str, ...]) -> dict[str, set[str]]:
    """``{module: names}`` of ``package`` that its top-level ``allowed`` names need, transitively.

    Roots: each allowed name wherever a module of the package defines or imports it (so ``from tabular.verify
    import random_mdp`` keeps working). ``ValueError`` when an allowed name is not in the package.
    """
    _, pkg_names, _ = _parse(package)
    missing = [n for n in allowed if n not in pkg_names]
    if missing:
        raise ValueError(f"{package} has no {', '.join(missing)}")
    pkg_dir = _module_path(package)[0].parent
    modules = [package] + [f"{package}.{p.stem}" for p in sorted(pkg_dir.glob("*.py")) if p.stem != "__init__"]
    todo = [(m, n) for m in modules for n in allowed if n in _parse(m)[1]]
    need: dict[str, set[str]] = {}
    while todo:
        mod, name = todo.pop()
        if name in need.get(mod, ()):
            continue
        _, names, is_pkg = _parse(mod)
        if name not in names:
            raise ValueError(f"{mod} does not define {name} at its top level")
        need.setdefault(mod, set()).add(name)
        node, alias = names[name]
        if alias is not None:
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                todo.append((_resolve(mod, is_pkg, node), alias.name))
            continue
        todo += _deps(mod, node)
    return need


def _pruned_source(modname: str, keep: set[str]) -> str:
    """The module's source with only the top-level statements that define ``keep`` (imports pruned to them)."""
    tree, names, _ = _parse(modname)
    body = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            body.append(node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            aliases = [a for a in node.names if (a.asname or a.name.split(".")[0]) in keep]
            if aliases:
                body.append(type(node)(**{**{f: getattr(node, f) for f in node._fields}, "names": aliases}))
        elif any(names.get(k, (None,))[0] is node for k in keep):
            body.append(node)
    doc = f"Student-side {modname}: only what the allowed functions need (cut by assignments/sandbox.py)."
    return ast.unparse(ast.Module([ast.Expr(ast.Constant(doc))] + body, type_ignores=[])) + "\n"


def student_package(dest: Path | str, allowed: tuple[str, ...], package: str = "tabular") -> Path:
    """Write the student-side ``package`` (only ``allowed`` and what they need) and the notebook runner
    (``_collect.py``) into ``dest``. With nothing allowed, no ``package`` at all. Returns ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "_collect.py", dest / "_collect.py")
    if not allowed:
        return dest
    need = closure(package, tuple(allowed))
    for mod, keep in need.items():
        rel = mod.split(".")[1:]
        path = dest / package / ("__init__.py" if not rel else Path(*rel).with_suffix(".py"))
        path.parent.mkdir(parents=True, exist_ok=True)
        src = _pruned_source(mod, keep)
        if not rel:
            src += (f"\n__all__ = {sorted(allowed)!r}\n\n\ndef __getattr__(name):\n"
                    f"    raise AttributeError(f'{package}.{{name}} is not available while grading; this assignment '\n"
                    f"                         f'allows only {', '.join(sorted(allowed))}')\n")
        path.write_text(src)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


# ---- the sandbox's command line -----------------------------------------------------------------------------------
def _python_trees() -> tuple[list[Path], list[str]]:
    """Directories to mount read-only for the interpreter (``/usr`` first) and the ``sys.path`` entries the
    runner adds (the virtual environment's ``site-packages``; no ``.pth`` files are run)."""
    prefixes = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
                Path(os.path.realpath(sys.executable)).parent.parent]
    trees = [Path("/usr")]
    for p in prefixes:
        if not any(p == t or t in p.parents for t in trees):
            trees = [t for t in trees if p not in t.parents] + [p]
    site = list(dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib")))
    return trees, site


def _hidden(trees: list[Path]) -> list[Path]:
    """Copies of the course packages (and the repository) that lie inside a mounted tree: covered by an empty
    directory in the sandbox."""
    out = []
    candidates = [HERE.parent]
    for name in HIDDEN_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            candidates.append(Path(spec.origin).resolve().parent)
    sites = list(_python_trees()[1])
    for t in trees:  # any installed copy, in the environment's or the interpreter's own site-packages
        sites += [*t.glob("lib/python3*/*-packages"), *t.glob("local/lib/python3*/*-packages")]
    for site in dict.fromkeys(map(str, sites)):
        candidates += [Path(site) / n for n in HIDDEN_PACKAGES if (Path(site) / n).exists()]
    for c in dict.fromkeys(candidates):
        if any(c == t or t in c.parents for t in trees):
            out.append(c)
    return out


def _dirs(dest: str, made: set[str]) -> list[str]:
    """``--dir`` options (mode 755) for every missing ancestor of ``dest``: bwrap makes them 700 otherwise."""
    out = []
    parts = Path(dest).parts
    for i in range(2, len(parts)):
        d = str(Path(*parts[:i]))
        if d not in made:
            made.add(d)
            out += ["--perms", "0755", "--dir", d]
    return out


#: x86-64 system calls refused with EPERM (defence in depth: the namespaces and uid already confine the process)
_DENIED_X86_64 = {"ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165, "umount2": 166,
                  "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308, "keyctl": 250, "add_key": 248,
                  "request_key": 249, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
                  "open_by_handle_at": 304, "io_uring_setup": 425, "io_uring_enter": 426,
                  "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
                  "fsmount": 432, "fspick": 433, "mount_setattr": 442, "kexec_load": 246, "init_module": 175,
                  "finit_module": 313, "delete_module": 176}
_CLONE, _CLONE3 = 56, 435
_CLONE_NS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000


def seccomp_filter() -> bytes | None:
    """A classic-BPF seccomp program (``struct sock_filter[]``) for ``bwrap --seccomp``; ``None`` off x86-64.

    Kills on a foreign architecture, refuses x32 calls, ``clone`` with a namespace flag and the calls above,
    and answers ``clone3`` with ENOSYS (the C library then falls back to ``clone``, whose flags it can check)."""
    if platform.machine() != "x86_64":
        return None
    ld_w_abs, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | 1, 0x00050000 | 38
    prog = [(ld_w_abs, 0, 0, 4), (jeq, 1, 0, 0xC000003E), (ret, 0, 0, kill),  # arch
            (ld_w_abs, 0, 0, 0), (jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]  # nr; x32 ABI
    for nr in sorted(_DENIED_X86_64.values()):
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, eperm)]
    prog += [(jeq, 0, 1, _CLONE3), (ret, 0, 0, enosys),
             (jeq, 0, 3, _CLONE), (ld_w_abs, 0, 0, 16), (jset, 0, 1, _CLONE_NS), (ret, 0, 0, eperm),
             (ret, 0, 0, allow)]
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)


def command(lib: Path, submission: Path, env: dict[str, str], seccomp_fd: int | None = None,
            args_fd: int | None = None) -> tuple[list[str], list[str]]:
    """``(argv, options)``: run the runner in ``lib`` on the notebook in ``submission`` inside the sandbox.

    The options go to bwrap through ``--args args_fd`` (kept off its command line, which ``/proc/1/cmdline``
    shows inside); without ``args_fd`` they are returned inline in ``argv``."""
    bwrap, setpriv = shutil.which("bwrap"), shutil.which("setpriv")
    trees, site = _python_trees()
    made: set[str] = set()
    opts = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--clearenv",
            "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/sbin", "/sbin"]
    # the fresh /tmp first: a Python tree under /tmp (a virtual environment made with mktemp) is bound on top of it
    opts += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    for t in trees:
        opts += _dirs(str(t), made) + ["--ro-bind", str(t), str(t)]
    hidden = _hidden(trees)
    for h in hidden:
        opts += ["--tmpfs", str(h), "--remount-ro", str(h)]
    for t in trees:  # a tree inside a hidden one (a virtual environment inside the repository) comes back
        if any(h in t.parents for h in hidden):
            opts += ["--ro-bind", str(t), str(t)]
    opts += _dirs(LIB + "/x", made) + ["--ro-bind", str(lib), LIB, "--ro-bind", str(submission), SUBMISSION]
    opts += ["--remount-ro", "/", "--chdir", "/tmp"]
    for k, v in env.items():
        opts += ["--setenv", k, v]
    if seccomp_fd is not None:
        opts += ["--seccomp", str(seccomp_fd)]
    python = str(Path(sys.executable))
    argv = [setpriv, "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups", "--inh-caps", "-all",
            "--bounding-set", "-all", "--no-new-privs", "--", python, "-I", "-S", f"{LIB}/_collect.py", NOTEBOOK,
            *site]
    if args_fd is None:
        return [bwrap, *opts, *argv], opts
    return [bwrap, "--args", str(args_fd), *argv], opts


def describe() -> str:
    """One line on the isolation in place."""
    sec = "a seccomp filter" if seccomp_filter() is not None else "no seccomp filter (not x86-64)"
    return (f"sandbox: bwrap with new pid/net/ipc/uts namespaces, read-only /usr, Python and site-packages, "
            f"the notebook and the student-side package; uid {NOBODY}, no capabilities, no-new-privs, {sec}")


@functools.lru_cache(maxsize=1)
def status() -> tuple[bool, str]:
    """``(True, description)`` when a sandbox can be made here, else ``(False, why)`` in one line."""
    if sys.platform != "linux":
        return False, f"no sandbox on {sys.platform}: grading untrusted notebooks needs Linux with bubblewrap"
    for tool, pkg in (("bwrap", "bubblewrap"), ("setpriv", "util-linux")):
        if shutil.which(tool) is None:
            return False, f"no sandbox: {tool} is not installed (Debian: apt-get install {pkg})"
    if os.geteuid() != 0:
        return False, "no sandbox: the grader must run as root to drop the notebook to uid 65534 (nobody)"
    with tempfile.TemporaryDirectory(prefix="sandbox_probe_") as tmp:
        lib, sub = Path(tmp) / "lib", Path(tmp) / "sub"
        lib.mkdir()
        sub.mkdir()
        (lib / "_collect.py").write_text("import os, sys\nprint(os.getuid(), os.path.exists('/sandbox/lib'))\n")
        for p in (Path(tmp), lib, sub, lib / "_collect.py"):
            p.chmod(0o755)
        try:
            r = run(lib, sub, {}, stdin=subprocess.DEVNULL, capture=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            return False, f"no sandbox: {type(e).__name__}: {e}"
        if r.returncode != 0 or r.stdout.decode(errors="replace").split() != [str(NOBODY), "True"]:
            err = (r.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            return False, f"no sandbox: bwrap failed here ({err})"
    return True, describe()


def run(lib: Path, submission: Path, env: dict[str, str], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=None, capture: bool = False, timeout: float | None = None):
    """Start the sandbox (a ``Popen``; with ``capture``, wait and return the ``CompletedProcess``)."""
    import resource

    sec = seccomp_filter()
    fds = []
    try:
        sec_fd = None
        if sec is not None:
            sec_fd, w_sec = os.pipe()
            fds.append(sec_fd)
            os.write(w_sec, sec)  # a few hundred bytes: fits in the pipe before bwrap reads it
            os.close(w_sec)
        r_args, w_args = os.pipe()
        fds.append(r_args)
        argv, opts = command(lib, submission, env, seccomp_fd=sec_fd, args_fd=r_args)
        data = b"\0".join(o.encode() for o in opts) + b"\0"
        if len(data) > 60000:  # a pipe holds 64 KiB: bwrap reads it only once started
            raise OSError("sandbox options too long")
        os.write(w_args, data)
        os.close(w_args)

        def limits():
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (TMP_BYTES, TMP_BYTES))
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

        sandbox_env = {"PATH": "/usr/bin:/bin"}  # bwrap's own environment: nothing of the grader's
        if capture:
            return subprocess.run(argv, stdin=stdin, capture_output=True, env=sandbox_env, pass_fds=fds,
                                  preexec_fn=limits, timeout=timeout)
        return subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=sandbox_env, pass_fds=fds,
                                preexec_fn=limits, start_new_session=True)
    finally:
        for fd in fds:
            os.close(fd)
