#!/usr/bin/env python3
"""The engine of bench/run (which installs and builds first; run that).

Measures sandvm against raw QEMU, libvirt and govmm, each repetition running
every contender once in turn (the order rotates), on the same default guest
(guest/build-guest ARCH), and writes bench/results/<timestamp>/. What each
figure means: docs/performance.md.
"""

import argparse
import csv
import datetime
import glob
import grp
import json
import os
import pwd
import re
import secrets
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
BUILD = os.environ.get('SVBENCH_BUILD') or os.path.join(HERE, '.build')
# the bench build's sandvm is not beside guest/: tell it where the builder is
os.environ.setdefault('SANDVM_GUEST_BUILDER', os.path.join(SRC, 'guest', 'build-guest'))

ARCHES = ('x86_64', 'aarch64', 'ppc64le', 's390x')
QEMU_BIN = {'x86_64': 'qemu-system-x86_64', 'aarch64': 'qemu-system-aarch64',
            'ppc64le': 'qemu-system-ppc64', 's390x': 'qemu-system-s390x'}
MACHINE = {'x86_64': 'q35', 'aarch64': 'virt', 'ppc64le': 'pseries', 's390x': 's390-ccw-virtio'}
MEMORY_MIB = 512  # sandvm's default guest size; every contender gets the same
# Kata's amd64 kernel parameters (kata-hypervisor.md, qemu_amd64.go)
KATA_KERNEL_PARAMS = ('tsc=reliable no_timer_check rcupdate.rcu_expedited=1 i8042.direct=1 '
                      'i8042.dumbkbd=1 i8042.nopnp=1 i8042.noaux=1 noreplace-smp reboot=k '
                      'cryptomgr.notests net.ifnames=0 pci=lastbus=0')

FIGURES = ('qmp-ready', 'qmp-rtt', 'boot', 'exec', 'hotplug', 'stop', 'concurrent', 'memory',
           'qemu-rss')

# (figure, metric, arch or None, sandvm contender, peer contender, factor, strict)
# met: median(sandvm) <= factor * median(peer)   (strict: <)
TARGETS = [
    ('qmp-ready', 'exec to QMP ready, paused', None, 'sandvm', 'raw', 1.10, False),
    ('qmp-ready', 'exec to QMP ready, paused', None, 'sandvm', 'libvirt', 0.2, False),
    ('qmp-rtt', 'QMP round trip', None, 'sandvm', 'raw', 1.10, False),
    ('qmp-rtt', 'QMP round trip', None, 'sandvm', 'govmm', 1.0, True),
    ('qmp-rtt', 'QMP round trip', None, 'sandvm-client', 'raw', 1.10, False),
    ('qmp-rtt', 'QMP round trip', None, 'sandvm-client', 'govmm', 1.0, True),
    ('boot', 'boot to first command', 'x86_64', 'sandvm', 'raw-defaults', 0.4, False),
    ('boot', 'boot to first command', 'x86_64', 'sandvm', 'raw-best', 1.15, False),
    ('boot', 'boot to first command', 'x86_64', 'sandvm-lifecycle', 'raw-defaults', 0.4, False),
    ('boot', 'boot to first command', 'x86_64', 'sandvm-lifecycle', 'raw-best', 1.15, False),
]
# absolute targets: (figure, metric, contender, limit, unit label)
ABS_TARGETS = [
    ('memory', 'manager RSS per running VM', 'sandvm', 2.0, '<= 2 MiB (0: no resident process)'),
    ('concurrent', 'manager RSS per VM', 'sandvm', 2.0, '<= 2 MiB (0: no resident process)'),
]

CONTENDERS = {
    'sandvm': 'sandvm CLI (lifecycle verbs / sandvm run) or public API where noted',
    'sandvm-lib': 'libsandvm called in-process',
    'sandvm-client': "sandvm's internal QMP client on one connection",
    'sandvm-default': 'sandvm stop with its default grace (ACPI power button first)',
    'sandvm-lifecycle': 'sandvm create (untimed), then start + exec until the output',
    'sandvm-cli': 'sandvm qmp (one CLI process per call)',
    'raw': 'raw QEMU driven by the plain C client (bench/svbench.c)',
    'raw-microvm': 'raw QEMU, microvm machine',
    'raw-defaults': "raw QEMU, QEMU's defaults with Debian's kernel (x86_64: bzImage, q35)",
    'raw-best': 'raw QEMU, best known: vmlinux (PVH), microvm, Kata kernel params, trivial init',
    'raw-console': 'raw QEMU + busybox sh on the serial console (no agent protocol)',
    'libvirt': 'libvirt 9.0 (virsh / in-process API), libvirtd on a private socket',
    'libvirt-virsh': 'virsh qemu-monitor-command, one virsh process per call',
    'govmm': 'govmm (Debian golang-github-kata-containers-govmm-dev) in a Go manager',
    'kata-argv': "raw QEMU with Kata's default amd64 argv (same memory, initrd, legacy serial)",
}


class BenchError(Exception):
    pass


class NotAvailable(Exception):
    """A contender that cannot be measured here (reported as n/a with the reason)."""


def log(msg):
    print(f'bench: {msg}', file=sys.stderr, flush=True)


def now_ns():
    return time.monotonic_ns()


def tail(path, n=15):
    try:
        with open(path, 'rb') as f:
            lines = f.read().decode('utf-8', 'replace').splitlines()
        return '\n'.join(lines[-n:])
    except OSError:
        return ''


def kv(line):
    """Parses svbench's 'k=v k=v' output; 'ns=' may hold a list."""
    out = {}
    m = re.match(r'\s*ns=([\d ]+?)(?:\s+(\w+=.*))?$', line.strip())
    if m and ' ' in m.group(1).strip():
        out['ns'] = [int(x) for x in m.group(1).split()]
        rest = m.group(2) or ''
    else:
        rest = line
    for w in rest.split():
        if '=' in w:
            k, v = w.split('=', 1)
            out[k] = int(v) if re.fullmatch(r'-?\d+', v) else v
    return out


def rss_kib(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def wait_gone(pid, timeout):
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        r, _, _ = select.select([fd], [], [], timeout)
        return bool(r)
    finally:
        os.close(fd)


class Console:
    """A guest console as a byte stream: a pipe pair or a connected socket."""

    def __init__(self, rfd, wfd=None, name='console'):
        self.rfd, self.wfd, self.name = rfd, wfd, name
        self.buf = b''
        self.seq = 0
        self.seen = 0

    def wait(self, pattern, timeout):
        """Returns the monotonic ns at which `pattern` (bytes) was first seen."""
        deadline = time.monotonic() + timeout
        start = 0
        while True:
            i = self.buf.find(pattern, start)
            if i >= 0:
                self.buf = self.buf[i + len(pattern):]
                return self.seen
            start = max(0, len(self.buf) - len(pattern))
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f'{self.name}: no {pattern.decode()} after {timeout:.0f} s; '
                                 f'last output: {self.buf[-600:].decode("utf-8", "replace")!r}')
            r, _, _ = select.select([self.rfd], [], [], left)
            if not r:
                continue
            data = os.read(self.rfd, 65536)
            self.seen = now_ns()
            if not data:
                raise BenchError(f'{self.name}: closed before {pattern.decode()}; last output: '
                                 f'{self.buf[-600:].decode("utf-8", "replace")!r}')
            self.buf = (self.buf + data)[-(1 << 20):]

    def send(self, text):
        os.write(self.wfd, text.encode())

    def run(self, cmd, timeout=60):
        """Sends a shell command line; returns (t_sent, t_done) when the marker it echoes
        arrives. The marker is computed by the guest's shell, so the echo of the typed
        line never matches it."""
        self.seq += 1
        n = 1000000 + self.seq
        t0 = now_ns()
        self.send(f'{cmd}; echo R$((1000000+{self.seq}))\n')
        t1 = self.wait(f'R{n}'.encode(), timeout)
        return t0, t1


class QMP:
    """A minimal QMP client for untimed control (hotplug commands)."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > deadline:
                    raise BenchError(f'QMP socket {path} never answered')
                time.sleep(0.02)
        self.s.settimeout(timeout)
        self.f = self.s.makefile('rb')
        self._read()  # greeting
        self.cmd('qmp_capabilities')

    def _read(self):
        line = self.f.readline()
        if not line:
            raise BenchError('QMP connection closed')
        return json.loads(line)

    def cmd(self, execute, arguments=None):
        msg = {'execute': execute}
        if arguments is not None:
            msg['arguments'] = arguments
        self.s.sendall(json.dumps(msg).encode() + b'\n')
        while True:
            m = self._read()
            if 'return' in m:
                return m['return']
            if 'error' in m:
                raise BenchError(f'QMP {execute}: {m["error"].get("desc")}')

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass


def stats(samples):
    return statistics.median(samples), min(samples), max(samples)


class Results:
    def __init__(self):
        self.rows = {}   # (figure, metric, arch, contender) -> dict
        self.order = []

    def row(self, figure, metric, arch, contender, unit):
        key = (figure, metric, arch, contender)
        if key not in self.rows:
            self.rows[key] = {'figure': figure, 'metric': metric, 'arch': arch,
                              'contender': contender, 'unit': unit, 'samples': [], 'note': ''}
            self.order.append(key)
        return self.rows[key]

    def add(self, figure, metric, arch, contender, unit, value):
        self.row(figure, metric, arch, contender, unit)['samples'].append(value)

    def note(self, figure, metric, arch, contender, unit, text):
        r = self.row(figure, metric, arch, contender, unit)
        if not r['note']:
            r['note'] = text

    def get(self, figure, metric, arch, contender):
        return self.rows.get((figure, metric, arch, contender))

    def table(self):
        """Rows with summaries, ratios and targets, in measuring order."""
        out = []
        for key in self.order:
            r = self.rows[key]
            d = dict(r)
            d['n'] = len(r['samples'])
            d['median'] = d['min'] = d['max'] = None
            if r['samples']:
                d['median'], d['min'], d['max'] = stats(r['samples'])
            d['ratio'] = None
            d['target'] = ''
            d['met'] = ''
            if not r['contender'].startswith('sandvm'):
                s = self.get(r['figure'], r['metric'], r['arch'], 'sandvm')
                if s and s['samples'] and d['median']:
                    d['ratio'] = statistics.median(s['samples']) / d['median']
            targets, mets = [], []
            for fig, metric, arch, sv, peer, factor, strict in TARGETS:
                if fig != r['figure'] or metric != r['metric'] or (arch and arch != r['arch']):
                    continue
                if peer != r['contender']:
                    continue
                s = self.get(fig, metric, r['arch'], sv)
                op = '<' if strict else '<='
                targets.append(f'{sv} {op} {factor:g} x this')
                if s and s['samples'] and d['median']:
                    q = statistics.median(s['samples']) / d['median']
                    ok = q < factor if strict else q <= factor
                    mets.append(f'{"yes" if ok else "NO"} ({q:.3f})')
                else:
                    mets.append('untested')
            for fig, metric, cont, limit, label in ABS_TARGETS:
                if fig == r['figure'] and metric == r['metric'] and cont == r['contender']:
                    targets.append(label)
                    if d['median'] is not None:
                        mets.append('yes' if d['max'] <= limit else 'NO')
                    else:
                        mets.append('untested')
            d['target'] = '; '.join(targets)
            d['met'] = '; '.join(mets)
            out.append(d)
        return out


def fmt(v, unit):
    if v is None:
        return '-'
    if unit in ('ms', 'µs', 's', 'MiB'):
        if abs(v) >= 100:
            return f'{v:.0f}'
        if abs(v) >= 10:
            return f'{v:.1f}'
        return f'{v:.2f}'
    return f'{v:g}'


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix='svbench-', dir='/tmp')
        os.chmod(self.tmp, 0o700)
        self.token = os.path.basename(self.tmp).split('-', 1)[1].replace('_', 'x')
        self.marker = secrets.token_hex(4)
        self.pattern = f'SVB-{self.marker}-OK'.encode()
        self.logs = os.path.join(self.tmp, 'logs')
        os.makedirs(self.logs)
        self.procs = []
        self.cleanups = []      # at the end of the run
        self.fig_cleanups = []  # at the end of the current figure
        self.res = Results()
        self.guests = {}
        self.svb = os.path.join(BUILD, 'bench', 'svbench')
        self.svb_sandvm = os.path.join(BUILD, 'bench', 'svbench-sandvm')
        self.libvirt_qmp = os.path.join(BUILD, 'bench', 'libvirt-qmp')
        self.govmm_bin = os.path.join(BUILD, 'govmm-bench')
        self.sandvm_bin = args.sandvm or os.path.join(BUILD, 'sandvm')
        self.sandvm_root = os.path.join(self.tmp, 'sv')
        os.makedirs(self.sandvm_root)
        self.sandvm_verbs = self._sandvm_verbs()
        self.libvirt = None
        self.govmm = None
        self.seq = 0

    # ---- processes ---------------------------------------------------------

    def logfile(self, name, argv=None):
        """A new log file; it starts with the command line it logs."""
        self.seq += 1
        path = os.path.join(self.logs, f'{self.seq:04d}-{name}.log')
        if argv:
            with open(path, 'w') as f:
                f.write('$ ' + ' '.join(shlex.quote(str(a)) for a in argv) + '\n')
        return path

    def spawn(self, argv, name, **kw):
        lf = kw.pop('logfile', None) or self.logfile(name, argv)
        out = kw.pop('stdout', None)
        errf = open(lf, 'ab')
        p = subprocess.Popen(argv, stdin=kw.pop('stdin', subprocess.DEVNULL),
                             stdout=out if out is not None else errf, stderr=errf,
                             start_new_session=True, **kw)
        errf.close()
        p.logpath = lf
        self.procs.append(p)
        return p

    def run(self, argv, name, timeout=120, check=True):
        """Runs argv to its end. Its stdout goes to a file, not a pipe: a daemon it
        leaves behind (a detached QEMU) would hold a pipe open."""
        lf = self.logfile(name, argv)
        with open(lf, 'ab') as errf, open(lf + '.out', 'w+b') as outf:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=outf, stderr=errf,
                                 start_new_session=True)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(p)
                raise BenchError(f'{name}: no answer after {timeout} s: {tail(lf, 5)}')
            outf.seek(0)
            p.stdout = outf.read()
        if check and p.returncode != 0:
            raise BenchError(f'{name}: exit {p.returncode}: {tail(lf, 8)}')
        p.logpath = lf
        return p

    def timed(self, argv, name, timeout=120):
        """Runs argv under `svbench time`; returns its ns (raises on a non-zero status)."""
        p = self.run([self.svb, 'time', '--'] + argv, name, timeout=timeout)
        d = kv(p.stdout.decode())
        if d.get('status') != 0:
            raise BenchError(f'{name}: {" ".join(argv[:4])}... exit {d.get("status")}: '
                             f'{tail(p.logpath, 8)}')
        return d['ns']

    def kill(self, p, sig=signal.SIGKILL):
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def sweep(self):
        """Kills every process still carrying this run's private directory or token in
        its command line (QEMUs started by sandvm, libvirt or govmm, daemonized or not)."""
        me = os.getpid()
        victims = []
        for d in os.listdir('/proc'):
            if not d.isdigit() or int(d) == me:
                continue
            try:
                with open(f'/proc/{d}/cmdline', 'rb') as f:
                    cmd = f.read()
            except OSError:
                continue
            if self.tmp.encode() in cmd or f'svb{self.token}'.encode() in cmd:
                victims.append(int(d))
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in victims:
            wait_gone(pid, 5)
        return victims

    def defer(self, fn):
        self.fig_cleanups.append(fn)

    def end_figure(self):
        """Stops what the figure left running (VMs kept across its repetitions) and
        every process it spawned that is still alive."""
        for fn in reversed(self.fig_cleanups):
            try:
                fn()
            except Exception as e:
                log(f'cleanup: {e}')
        self.fig_cleanups.clear()
        keep = {id(x) for x in (getattr(self.libvirt, 'libvirtd', None),
                                getattr(self.libvirt, 'virtlogd', None),
                                getattr(self.govmm, 'p', None))}
        for p in self.procs:
            if id(p) not in keep:
                self.kill(p)
        self.procs = [p for p in self.procs if p.poll() is None]

    def cleanup(self):
        self.end_figure()
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # cleanup goes on whatever failed
                log(f'cleanup: {e}')
        self.cleanups.clear()
        for p in self.procs:
            self.kill(p)
        left = self.sweep()
        if left:
            log(f'cleanup: killed {len(left)} leftover process(es): {left}')
        if self.args.keep_tmp:
            log(f'kept {self.tmp}')
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- guests ------------------------------------------------------------

    def guest(self, arch):
        if arch in self.guests:
            return self.guests[arch]
        log(f'guest: guest/build-guest {arch}')
        p = subprocess.run([os.path.join(SRC, 'guest', 'build-guest'), arch],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=900)
        if p.returncode != 0:
            raise BenchError(f'guest/build-guest {arch} failed: {p.stderr.decode()[-800:]}')
        mpath = p.stdout.decode().strip().splitlines()[-1]
        with open(mpath) as f:
            m = json.load(f)
        d = os.path.dirname(mpath)
        g = {'arch': arch, 'manifest': m, 'dir': d, 'kernel': os.path.join(d, m['kernel']),
             'initramfs': os.path.join(d, m['initramfs']), 'console': m['console'],
             'initrds': {}}
        self.guests[arch] = g
        return g

    def initrd(self, g, kind):
        """The guest's initramfs with a job appended: 'print' prints the marker and
        exits; 'shell' prints it, then runs busybox sh on the console."""
        if kind in g['initrds']:
            return g['initrds'][kind]
        job = os.path.join(self.tmp, f'job-{g["arch"]}-{kind}.cpio')
        if kind == 'print':
            argv = ['printf', 'SVB-%s-OK\\n', self.marker]
        elif kind == 'shell':
            argv = ['sh', '-c', 'printf "SVB-%s-OK\\n" "$0"; exec sh </dev/console', self.marker]
        elif kind == 'none':
            return g['initramfs']
        else:
            raise ValueError(kind)
        subprocess.run([os.path.join(SRC, 'guest', 'make-job-cpio'), job,
                        f'n{self.marker}', '--'] + argv, check=True)
        out = os.path.join(self.tmp, f'initrd-{g["arch"]}-{kind}')
        with open(out, 'wb') as o:
            for part in (g['initramfs'], job):
                with open(part, 'rb') as i:
                    shutil.copyfileobj(i, o)
        g['initrds'][kind] = out
        return out

    def debian_vmlinuz(self, g):
        """Debian's bzImage of the x86_64 guest's kernel (the guest keeps only the
        vmlinux it extracts): from the same .deb, cached in ~/.cache/sandvm/bench."""
        m = g['manifest']
        rel = m['kernel_release']
        if m.get('kernel_format') == 'bzImage':
            return g['kernel']
        cache = os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'),
                             'sandvm', 'bench')
        out = os.path.join(cache, f'vmlinuz-{rel}')
        if os.path.exists(out):
            return out
        os.makedirs(cache, exist_ok=True)
        pkg = f'linux-image-{rel}'
        ver = m['packages'].get(pkg)
        if not ver:
            raise NotAvailable(f'manifest names no {pkg} version')
        aptdir = os.path.join(os.path.dirname(g['dir']), 'apt')  # build-guest's private apt
        opts = ['-o', f'Dir::State={aptdir}', '-o', f'Dir::State::Lists={aptdir}/lists',
                '-o', f'Dir::State::status={aptdir}/status', '-o', f'Dir::Cache={aptdir}/cache',
                '-o', f'Dir::Etc::SourceList={aptdir}/sources.list',
                '-o', f'Dir::Etc::SourceParts={aptdir}/sources.list.d',
                '-o', f'Dir::Etc::Preferences={aptdir}/preferences',
                '-o', f'Dir::Etc::PreferencesParts={aptdir}/preferences.d',
                '-o', 'APT::Architecture=amd64', '-o', 'APT::Architectures=amd64',
                '-o', 'Acquire::Languages=none']
        if os.getuid() == 0:
            opts += ['-o', 'APT::Sandbox::User=root']
        work = tempfile.mkdtemp(dir=self.tmp)
        log(f'fetching {pkg}={ver} for the bzImage')
        for attempt in (opts, ['-o', 'APT::Sandbox::User=root'] if os.getuid() == 0 else []):
            r = subprocess.run(['apt-get'] + attempt + ['-q', 'download', f'{pkg}={ver}'],
                               cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if r.returncode == 0:
                break
        else:
            raise NotAvailable(f'could not download {pkg}={ver}: {r.stderr.decode()[-300:]}')
        deb = glob.glob(os.path.join(work, '*.deb'))[0]
        tar = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', deb], stdout=subprocess.PIPE)
        with open(out + '.tmp', 'wb') as o:
            subprocess.run(['tar', '-xO', f'./boot/vmlinuz-{rel}'], stdin=tar.stdout, stdout=o,
                           check=True)
        tar.wait()
        with open(out + '.tmp', 'rb') as f:
            f.seek(514)
            if f.read(4) != b'HdrS':
                raise NotAvailable(f'{deb} has no bzImage at boot/vmlinuz-{rel}')
        os.rename(out + '.tmp', out)
        shutil.rmtree(work, ignore_errors=True)
        return out

    # ---- sandvm ------------------------------------------------------------

    def _sandvm_verbs(self):
        if not os.access(self.sandvm_bin, os.X_OK):
            return set()
        try:
            out = subprocess.run([self.sandvm_bin, '--help'], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=10).stdout.decode()
        except (OSError, subprocess.TimeoutExpired):
            return set()
        return set(re.findall(r'^  ([a-z][a-z-]+)\s', out, re.M))

    def need_sandvm(self, *verbs):
        if not self.sandvm_verbs:
            raise NotAvailable(f'no sandvm binary at {self.sandvm_bin} (build failed?)')
        missing = [v for v in verbs if v not in self.sandvm_verbs]
        if missing:
            raise NotAvailable(f'sandvm has no {"/".join(missing)} yet')

    def sv(self, *args):
        return [self.sandvm_bin, '--root', self.sandvm_root] + list(args)

    def sv_id(self, n):
        return f'svb{self.token}-{n}'

    def sv_create(self, vid, arch='x86_64'):
        self.need_sandvm('create', 'start', 'stop')
        self.run(self.sv('create', '--arch', arch, vid), f'sandvm-create-{vid}', timeout=600)

    def sv_stop(self, vid, grace=0):
        self.run(self.sv('stop', '--grace', str(grace), vid), f'sandvm-stop-{vid}', check=False,
                 timeout=120)

    def sv_pids(self, vid):
        """QEMU's pid of a sandvm VM: `sandvm pids`, else the QEMU whose argv names the VM."""
        if 'pids' in self.sandvm_verbs:
            p = self.run(self.sv('pids', vid), f'sandvm-pids-{vid}', check=False)
            if p.returncode == 0 and p.stdout.split():
                return [int(x) for x in p.stdout.split()]
        return [pid for pid, cmd in self.procs_matching(vid.encode()) if b'qemu-system' in cmd]

    def procs_matching(self, needle):
        out = []
        for d in os.listdir('/proc'):
            if not d.isdigit():
                continue
            try:
                with open(f'/proc/{d}/cmdline', 'rb') as f:
                    cmd = f.read()
            except OSError:
                continue
            if needle in cmd:
                out.append((int(d), cmd))
        return out

    def sandvm_resident(self):
        """(count, KiB, descriptions) of the processes of this sandvm binary, or naming
        this run's state root, alive now: called while no verb of ours runs, so each
        one is resident. QEMU and virtiofsd are not counted."""
        real = os.path.realpath(self.sandvm_bin)
        n = kib = 0
        found = []
        for d in os.listdir('/proc'):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                exe = os.readlink(f'/proc/{d}/exe')
                with open(f'/proc/{d}/cmdline', 'rb') as f:
                    cmd = f.read()
            except OSError:
                continue
            base = os.path.basename(exe)
            if base.startswith('qemu-system') or base == 'virtiofsd':
                continue
            if exe == real or self.sandvm_root.encode() in cmd:
                n += 1
                r = rss_kib(int(d)) or 0
                kib += r
                text = cmd.replace(b'\0', b' ').decode('utf-8', 'replace')[:80]
                found.append(f'pid {d} {text} ({r} KiB)')
        return n, kib, found

    # ---- raw QEMU ------------------------------------------------------------

    def raw_argv(self, g, variant, initrd_kind='none'):
        """Raw QEMU command lines. 'paused': the same guest as sandvm's (q35, vmlinux),
        no devices, for the QMP figures; 'microvm': the same on microvm; 'defaults':
        QEMU's defaults with Debian's kernel; 'best': the fastest known line;
        'console': 'paused' with the serial console on stdio, for the console shell."""
        arch = g['arch']
        q = QEMU_BIN[arch]
        con = g['console']
        if variant in ('paused', 'microvm', 'console'):
            m = 'q35' if variant != 'microvm' else 'microvm,x-option-roms=off'
            a = [q, '-machine', m, '-accel', 'tcg', '-m', str(MEMORY_MIB), '-smp', '1',
                 '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
                 '-kernel', g['kernel'], '-initrd', self.initrd(g, initrd_kind),
                 '-append', f'console={con} quiet panic=-1']
            if variant == 'console':
                a += ['-serial', 'stdio']
            else:
                a += ['-S']
            return a
        if variant == 'defaults':
            kernel = self.debian_vmlinuz(g) if arch == 'x86_64' else g['kernel']
            a = [q, '-machine', MACHINE[arch], '-accel', 'tcg', '-m', str(MEMORY_MIB),
                 '-nographic', '-no-reboot', '-kernel', kernel,
                 '-initrd', self.initrd(g, 'print'), '-append', f'console={con} quiet panic=-1']
            if arch == 'aarch64':
                a[3:3] = ['-cpu', 'max']  # the virt machine's default CPU is 32-bit
            return a
        if variant == 'best':
            if arch != 'x86_64':
                raise NotAvailable('defined for x86_64 only')
            return [q, '-machine', 'microvm,x-option-roms=off', '-accel', 'tcg',
                    '-m', str(MEMORY_MIB), '-smp', '1', '-nodefaults', '-no-user-config',
                    '-nographic', '-no-reboot', '-serial', 'stdio', '-kernel', g['kernel'],
                    '-initrd', g['initramfs'],
                    '-append', f'console=ttyS0 quiet panic=-1 {tsc_khz_param()}'
                               f'{KATA_KERNEL_PARAMS} rdinit=/bin/busybox -- '
                               f'printf SVB-%s-OK\\n {self.marker}']
        raise ValueError(variant)

    def raw_start_paused(self, g, variant='paused', name='raw'):
        sock = os.path.join(self.tmp, f'{name}-{self.seq + 1}.qmp')
        p = self.run([self.svb, 'qemu-start', sock, '--'] + self.raw_argv(g, variant),
                     f'{name}-start', timeout=120)
        d = kv(p.stdout.decode())
        return sock, d['pid'], d['ns']

    def raw_quit(self, sock, pid):
        p = self.run([self.svb, 'qmp-quit', sock, str(pid)], 'raw-quit', timeout=60)
        return kv(p.stdout.decode())['ns']

    def console_vm(self, g, extra=(), name='raw-console'):
        """A raw QEMU whose job is busybox sh on the serial console (stdio), with QMP."""
        qsock = os.path.join(self.tmp, f'{name}-{self.seq + 1}.qmp')
        argv = self.raw_argv(g, 'console', 'shell') + ['-qmp', f'unix:{qsock},server=on,wait=off']
        argv += list(extra)
        p = self.spawn(argv, name, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        c = Console(p.stdout.fileno(), p.stdin.fileno(), name)
        c.wait(self.pattern, self.args.boot_timeout)
        c.run('mkfifo /tmp/svbp && exec 3<>/tmp/svbp')
        return p, c, qsock

    # ---- figures -------------------------------------------------------------

    def reps(self, full, quick):
        if self.args.reps:
            return self.args.reps
        return quick if self.args.quick else full

    def interleave(self, figure, contenders, reps, fn):
        """Runs fn(contender, rep) for every rep, every contender once per rep, the order
        rotating. A contender that fails twice in a row is dropped (its error noted)."""
        failures = {c: 0 for c in contenders}
        live = list(contenders)
        for rep in range(reps):
            k = rep % len(contenders)
            for c in contenders[k:] + contenders[:k]:
                if c not in live:
                    continue
                try:
                    fn(c, rep)
                    failures[c] = 0
                except NotAvailable as e:
                    live.remove(c)
                    self.na(figure, c, str(e))
                except BenchError as e:
                    failures[c] += 1
                    log(f'{figure}/{c}: {e}')
                    if failures[c] >= 2:
                        live.remove(c)
                        self.na(figure, c, f'error: {str(e)[:300]}')

    def na(self, figure, contender, why):
        """Notes why a contender has no figure on every metric row of this figure."""
        metrics = [k for k in self.res.order if k[0] == figure]
        keys = {(k[1], k[2]) for k in metrics} or {(self.metric_of(figure), self.main_arch())}
        for metric, arch in keys:
            unit = next((self.res.rows[k]['unit'] for k in metrics if k[1] == metric), '')
            self.res.note(figure, metric, arch, contender, unit, why)
        log(f'{figure}/{contender}: n/a: {why}')

    def metric_of(self, figure):
        return {'qmp-ready': 'exec to QMP ready, paused', 'qmp-rtt': 'QMP round trip',
                'boot': 'boot to first command', 'exec': 'exec round trip',
                'hotplug': 'block hotplug until the guest sees it',
                'stop': 'stop until the process is gone', 'concurrent': 'start N paused, total',
                'memory': 'manager RSS per running VM', 'qemu-rss': 'QEMU RSS, booted guest'}[figure]

    def main_arch(self):
        return 'x86_64'

    def fig_qmp_ready(self):
        fig, metric, arch = 'qmp-ready', self.metric_of('qmp-ready'), self.main_arch()
        g = self.guest(arch)
        for c in ('sandvm', 'sandvm-lib', 'raw', 'raw-microvm', 'libvirt', 'govmm'):
            self.res.row(fig, metric, arch, c, 'ms')

        def one(c, rep):
            if c in ('sandvm', 'sandvm-lib'):
                if c == 'sandvm-lib':
                    self.need_lib()
                vid = self.sv_id(f'r{c[-3:]}{rep}')
                self.sv_create(vid, arch)
                try:
                    if c == 'sandvm':
                        ns = self.timed(self.sv('start', '--paused', vid), 'sandvm-start')
                    else:
                        p = self.run([self.svb_sandvm, 'api-start', self.sandvm_root, vid],
                                     'sandvm-api-start')
                        ns = kv(p.stdout.decode())['ns']
                finally:
                    self.sv_stop(vid)
            elif c in ('raw', 'raw-microvm'):
                sock, pid, ns = self.raw_start_paused(g, 'paused' if c == 'raw' else 'microvm', c)
                self.raw_quit(sock, pid)
            elif c == 'libvirt':
                lv = self.need_libvirt()
                name = f'svb{self.token}-q{rep}'
                xml = lv.domain_xml(name, g, self.initrd(g, 'none'))
                try:
                    ns = self.timed(lv.virsh('create', xml, '--paused'), 'virsh-create')
                finally:
                    lv.destroy(name)
            elif c == 'govmm':
                gv = self.need_govmm()
                vid = f'svb{self.token}-g{rep}'
                d = gv.request({'op': 'launch', 'vm': gv.spec(vid, g, self.initrd(g, 'none'),
                                                              paused=True)})
                ns = d['ns']
                gv.request({'op': 'stop', 'id': vid})
            self.res.add(fig, metric, arch, c, 'ms', ns / 1e6)

        self.interleave(fig, ['sandvm', 'sandvm-lib', 'raw', 'raw-microvm', 'libvirt', 'govmm'],
                        self.reps(20, 5), one)

    def need_lib(self):
        if not os.access(self.svb_sandvm, os.X_OK):
            raise NotAvailable('bench/svbench-sandvm was not built (libsandvm did not build?)')

    def need_libvirt(self):
        if self.args.no_libvirt:
            raise NotAvailable('--no-libvirt')
        if self.libvirt is None:
            self.libvirt = Libvirt(self)
            self.cleanups.append(self.libvirt.teardown)
            self.libvirt.setup()
        if self.libvirt.error:
            raise NotAvailable(self.libvirt.error)
        return self.libvirt

    def need_govmm(self):
        if self.args.no_govmm:
            raise NotAvailable('--no-govmm')
        if not os.access(self.govmm_bin, os.X_OK):
            raise NotAvailable('the govmm program was not built')
        if self.govmm is None:
            self.govmm = Govmm(self)
            self.cleanups.append(self.govmm.close)
        return self.govmm

    def fig_qmp_rtt(self):
        fig, metric, arch = 'qmp-rtt', self.metric_of('qmp-rtt'), self.main_arch()
        g = self.guest(arch)
        n = 1000
        order = ['sandvm', 'sandvm-client', 'raw', 'libvirt', 'govmm', 'libvirt-virsh',
                 'sandvm-cli']
        for c in order:
            self.res.row(fig, metric, arch, c, 'µs')
        vms = {}

        def get_vm(c):
            if c in vms:
                return vms[c]
            if c in ('sandvm', 'sandvm-cli'):
                if 'sandvm' not in vms:
                    self.need_sandvm('create', 'start', 'stop', 'qmp')
                    vid = self.sv_id('rtt')
                    self.sv_create(vid, arch)
                    self.defer(lambda: self.sv_stop(vid))
                    self.run(self.sv('start', '--paused', vid), 'sandvm-start')
                    vms['sandvm'] = vid
                vms[c] = vms['sandvm']
            elif c in ('raw', 'sandvm-client'):
                if 'raw' not in vms:
                    sock, pid, _ = self.raw_start_paused(g)
                    self.defer(lambda: self.raw_quit(sock, pid))
                    vms['raw'] = sock
                vms[c] = vms['raw']
            elif c in ('libvirt', 'libvirt-virsh'):
                lv = self.need_libvirt()
                if 'libvirt' not in vms:
                    name = f'svb{self.token}-rtt'
                    lv.run_virsh('create', lv.domain_xml(name, g, self.initrd(g, 'none')),
                                 '--paused')
                    self.defer(lambda: lv.destroy(name))
                    vms['libvirt'] = name
                vms[c] = vms['libvirt']
            elif c == 'govmm':
                gv = self.need_govmm()
                vid = f'svb{self.token}-grtt'
                gv.request({'op': 'launch', 'vm': gv.spec(vid, g, self.initrd(g, 'none'),
                                                          paused=True)})
                vms[c] = vid
            return vms[c]

        def one(c, rep):
            vm = get_vm(c)
            if c == 'sandvm':
                self.need_lib()
                p = self.run([self.svb_sandvm, 'api-qmp', self.sandvm_root, vm, str(n)],
                             'sandvm-api-qmp', timeout=600)
                ns = kv(p.stdout.decode())['ns']
            elif c == 'sandvm-client':
                self.need_lib()
                p = self.run([self.svb_sandvm, 'client-qmp', vm, str(n)], 'sandvm-client-qmp')
                ns = kv(p.stdout.decode())['ns']
            elif c == 'raw':
                p = self.run([self.svb, 'qmp-rtt', vm, str(n)], 'raw-qmp-rtt')
                ns = kv(p.stdout.decode())['ns']
            elif c == 'libvirt':
                if not os.access(self.libvirt_qmp, os.X_OK):
                    raise NotAvailable('bench/peers/libvirt-qmp was not built (libvirt-dev?)')
                p = self.run([self.libvirt_qmp, self.libvirt.uri, vm, str(n)], 'libvirt-qmp',
                             timeout=600)
                ns = kv(p.stdout.decode())['ns']
            elif c == 'govmm':
                ns = self.govmm.request({'op': 'rtt', 'id': vm, 'n': n})['ns']
            elif c == 'libvirt-virsh':
                ns = [self.timed(self.libvirt.virsh('qemu-monitor-command', vm,
                                                    '{"execute":"query-status"}'), 'virsh-qmc')
                      for _ in range(20)]
            elif c == 'sandvm-cli':
                ns = [self.timed(self.sv('qmp', vm, '{"execute":"query-status"}'), 'sandvm-qmp')
                      for _ in range(20)]
            if isinstance(ns, int):
                ns = [ns]
            for v in ns:
                self.res.add(fig, metric, arch, c, 'µs', v / 1e3)

        self.interleave(fig, order, self.reps(5, 1), one)

    def fig_boot(self):
        fig, metric = 'boot', self.metric_of('boot')
        arches = self.args.arch
        order = ['sandvm', 'sandvm-lifecycle', 'raw-defaults', 'raw-best', 'libvirt']
        for arch in arches:
            for c in order:
                if c == 'raw-best' and arch != 'x86_64':
                    continue
                self.res.row(fig, metric, arch, c, 's')
        for arch in arches:
            try:
                g = self.guest(arch)
            except BenchError as e:
                for c in order:
                    self.res.note(fig, metric, arch, c, 's', f'error: {e}')
                continue

            def one(c, rep, arch=arch, g=g):
                if c == 'raw-best' and arch != 'x86_64':
                    return
                if c == 'sandvm':
                    self.need_sandvm('run')
                    argv = [self.sandvm_bin, 'run', '--arch', arch, '--',
                            'printf', 'SVB-%s-OK\\n', self.marker]
                    t = self.boot_stream(argv, f'sandvm-run-{arch}', wait_exit=True)
                elif c == 'sandvm-lifecycle':
                    t = self.boot_lifecycle(arch, rep)
                elif c in ('raw-defaults', 'raw-best'):
                    t = self.boot_stream(self.raw_argv(g, c[4:]), f'{c}-{arch}')
                elif c == 'libvirt':
                    lv = self.need_libvirt()
                    t = lv.boot(g, f'svb{self.token}-b{arch[:3]}{rep}')
                self.res.add(fig, metric, arch, c, 's', t / 1e9)

            self.interleave_arch(fig, arch, order, self.reps(10, 3), one)

    def boot_lifecycle(self, arch, rep):
        """create (untimed), then ns from spawning `start` to the first output of
        `exec` (which waits for the guest's agent)."""
        self.need_sandvm('create', 'start', 'exec', 'stop')
        vid = self.sv_id(f'b{arch[:3]}{rep}')
        self.sv_create(vid, arch)
        try:
            t0 = now_ns()
            self.run(self.sv('start', vid), 'sandvm-start')
            return self.boot_stream(self.sv('exec', '--timeout', str(self.args.boot_timeout), vid,
                                            '--', 'printf', 'SVB-%s-OK\\n', self.marker),
                                    f'sandvm-exec-{arch}', wait_exit=True, t0=t0)
        finally:
            self.sv_stop(vid)

    def interleave_arch(self, fig, arch, order, reps, fn):
        saved = self.main_arch
        self.main_arch = lambda: arch
        try:
            self.interleave(fig, order, reps, fn)
        finally:
            self.main_arch = saved

    def boot_stream(self, argv, name, wait_exit=False, t0=None):
        """Starts argv (its stdout is the guest console or the job's output) and returns
        the ns from the spawn (or t0) to the first sight of the job's output."""
        t0 = t0 or now_ns()
        p = self.spawn(argv, name, stdout=subprocess.PIPE)
        try:
            c = Console(p.stdout.fileno(), None, name)
            t1 = c.wait(self.pattern, self.args.boot_timeout)
            if wait_exit:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    raise BenchError(f'{name}: still running 60 s after the command')
                if p.returncode != 0:
                    raise BenchError(f'{name}: exit {p.returncode}: {tail(p.logpath, 8)}')
            return t1 - t0
        except BenchError as e:
            raise BenchError(f'{e}\n{tail(p.logpath, 8)}')
        finally:
            self.kill(p, signal.SIGTERM)
            self.kill(p)
            p.stdout.close()

    def fig_exec(self):
        fig, metric, arch = 'exec', self.metric_of('exec'), self.main_arch()
        g = self.guest(arch)
        order = ['sandvm', 'sandvm-lib', 'raw-console']
        for c in order:
            self.res.row(fig, metric, arch, c, 'ms')
        state = {}

        def one(c, rep):
            if c in ('sandvm', 'sandvm-lib'):
                if 'sv' not in state:
                    self.need_sandvm('create', 'start', 'exec', 'stop')
                    vid = self.sv_id('exec')
                    self.sv_create(vid, arch)
                    self.defer(lambda: self.sv_stop(vid))
                    self.run(self.sv('start', vid), 'sandvm-start')
                    self.run(self.sv('exec', vid, '--', 'true'), 'sandvm-exec-first',
                             timeout=self.args.boot_timeout)
                    state['sv'] = vid
                vid = state['sv']
                if c == 'sandvm':
                    ns = self.timed(self.sv('exec', vid, '--', 'true'), 'sandvm-exec')
                else:
                    self.need_lib()
                    p = self.run([self.svb_sandvm, 'api-exec', self.sandvm_root, vid],
                                 'sandvm-api-exec')
                    ns = kv(p.stdout.decode())['ns']
            else:
                if 'raw' not in state:
                    p, con, _ = self.console_vm(g)
                    state['raw'] = con
                t0, t1 = state['raw'].run('/bin/true')
                ns = t1 - t0
            self.res.add(fig, metric, arch, c, 'ms', ns / 1e6)

        self.interleave(fig, order, self.reps(50, 10), one)

    def fig_hotplug(self):
        fig, metric, arch = 'hotplug', self.metric_of('hotplug'), self.main_arch()
        g = self.guest(arch)
        order = ['sandvm', 'raw-console', 'libvirt']
        for c in order:
            self.res.row(fig, metric, arch, c, 'ms')
        reps = min(self.reps(10, 3), 20)
        state = {'n': {c: 0 for c in order}}

        def disk(c, i):
            path = os.path.join(self.tmp, f'disk-{c}-{i}.img')
            with open(path, 'wb') as f:
                f.truncate(8 << 20)
            return path

        def one(c, rep):
            try:
                plug_one(c, rep)
            except BenchError:
                # the guest shell may still be waiting for the disk: start over
                if c == 'raw-console' and 'raw' in state:
                    self.kill(state.pop('raw')[2])
                    state['n'][c] = 0
                if c == 'libvirt' and 'lv' in state:
                    name, con = state.pop('lv')
                    con.close()
                    self.libvirt.destroy(name)
                    state['n'][c] = 0
                raise

        def plug_one(c, rep):
            i = state['n'][c]
            dev = 'vd' + chr(ord('a') + i)
            if c == 'sandvm':
                self.need_sandvm('create', 'start', 'exec', 'stop', 'hotplug')
                # Ready for when `sandvm hotplug` exists: the syntax below is a guess to
                # be checked against docs/cli.md.
                if 'sv' not in state:
                    vid = self.sv_id('hp')
                    self.sv_create(vid, arch)
                    self.defer(lambda: self.sv_stop(vid))
                    self.run(self.sv('start', vid), 'sandvm-start')
                    self.run(self.sv('exec', vid, '--', 'true'), 'sandvm-exec-first',
                             timeout=self.args.boot_timeout)
                    state['sv'] = vid
                vid = state['sv']
                w = self.spawn(self.sv('exec', vid, '--', 'sh', '-c',
                                       f'while [ ! -e /sys/block/{dev} ]; do '
                                       f'usleep 5000; done'), 'sandvm-hp-wait')
                t0 = now_ns()
                self.run(self.sv('hotplug', vid, 'block', disk(c, i)), 'sandvm-hotplug')
                w.wait(60)
                t1 = now_ns()
            elif c == 'raw-console':
                if 'raw' not in state:
                    ports = []
                    for k in range(reps):
                        ports += ['-device', f'pcie-root-port,id=rp{k},bus=pcie.0,chassis={k + 1}']
                    p, con, qsock = self.console_vm(g, ports)
                    state['raw'] = (con, QMP(qsock), p)
                con, qmp, _ = state['raw']
                t0, t1 = self.hotplug_console(con, dev, lambda: (
                    qmp.cmd('blockdev-add', {'driver': 'raw', 'node-name': f'hd{i}',
                                             'file': {'driver': 'file',
                                                      'filename': disk(c, i)}}),
                    qmp.cmd('device_add', {'driver': 'virtio-blk-pci', 'id': f'vd{i}',
                                           'drive': f'hd{i}', 'bus': f'rp{i}'})))
            elif c == 'libvirt':
                lv = self.need_libvirt()
                if 'lv' not in state:
                    name = f'svb{self.token}-hp'
                    # libvirt puts its own USB controller and balloon on spare
                    # ports too: leave room
                    con = lv.console_domain(g, name, root_ports=reps + 4)
                    state['lv'] = (name, con)
                name, con = state['lv']
                t0, t1 = self.hotplug_console(con, dev, lambda: lv.run_virsh(
                    'attach-disk', name, disk(c, i), f'vd{chr(ord("b") + i)}',
                    '--targetbus', 'virtio', '--driver', 'qemu', '--subdriver', 'raw', '--live'))
            state['n'][c] += 1
            self.res.add(fig, metric, arch, c, 'ms', (t1 - t0) / 1e6)

        self.interleave(fig, order, reps, one)

    def hotplug_console(self, con, dev, plug):
        """Starts a wait loop in the guest shell, plugs, returns (t_plug, t_seen)."""
        con.seq += 1
        n = 1000000 + con.seq
        # polls every 5 ms (a builtin read with a timeout on a fifo nobody writes:
        # no process per poll), gives up after ~20 s
        con.send(f'echo W$((1000000+{con.seq})); i=0; while [ ! -e /sys/block/{dev} ] && '
                 f'[ $i -lt 4000 ]; do read -t 0.005 x <&3; i=$((i+1)); done; '
                 f'echo H$((1000000+{con.seq}))\n')
        con.wait(f'W{n}'.encode(), 30)
        t0 = now_ns()
        plug()
        t1 = con.wait(f'H{n}'.encode(), 60)
        return t0, t1

    def fig_stop(self):
        fig, metric, arch = 'stop', self.metric_of('stop'), self.main_arch()
        g = self.guest(arch)
        order = ['sandvm', 'sandvm-default', 'raw', 'libvirt', 'govmm']
        for c in order:
            self.res.row(fig, metric, arch, c, 'ms')

        def one(c, rep):
            if c.startswith('sandvm'):
                vid = self.sv_id(f's{c[-3:]}{rep}')
                self.sv_create(vid, arch)
                try:
                    self.run(self.sv('start', '--paused', vid), 'sandvm-start')
                    pids = self.sv_pids(vid)
                    args = ['--grace', '0'] if c == 'sandvm' else []
                    t0 = now_ns()
                    ns = self.timed(self.sv('stop', *args, vid), 'sandvm-stop', timeout=60)
                    for pid in pids:
                        if not wait_gone(pid, 30):
                            raise BenchError(f'QEMU {pid} still there after sandvm stop')
                    ns = max(ns, now_ns() - t0)
                finally:
                    self.sv_stop(vid)
            elif c == 'raw':
                sock, pid, _ = self.raw_start_paused(g)
                ns = self.raw_quit(sock, pid)
            elif c == 'libvirt':
                lv = self.need_libvirt()
                name = f'svb{self.token}-s{rep}'
                lv.run_virsh('create', lv.domain_xml(name, g, self.initrd(g, 'none')), '--paused')
                pid = lv.qemu_pid(name)
                t0 = now_ns()
                lv.run_virsh('destroy', name)
                if not wait_gone(pid, 30):
                    raise BenchError(f'QEMU {pid} still there after virsh destroy')
                ns = now_ns() - t0
            elif c == 'govmm':
                gv = self.need_govmm()
                vid = f'svb{self.token}-gs{rep}'
                gv.request({'op': 'launch', 'vm': gv.spec(vid, g, self.initrd(g, 'none'),
                                                          paused=True)})
                ns = gv.request({'op': 'stop', 'id': vid})['ns']
            self.res.add(fig, metric, arch, c, 'ms', ns / 1e6)

        self.interleave(fig, order, self.reps(20, 5), one)

    def fig_concurrent(self):
        fig, arch = 'concurrent', self.main_arch()
        g = self.guest(arch)
        n = self.args.concurrent or (2 if self.args.quick else 20)
        m_total, m_per, m_rss = (f'start {n} paused, total', f'start {n} paused, per VM',
                                 'manager RSS per VM')
        order = ['sandvm', 'raw', 'libvirt', 'govmm']
        for c in order:
            self.res.row(fig, m_total, arch, c, 'ms')
            self.res.row(fig, m_per, arch, c, 'ms')
            self.res.row(fig, m_rss, arch, c, 'MiB')
        self.concurrent_n = n

        def parallel(cmds, name):
            t0 = now_ns()
            ps = [self.spawn([self.svb, 'time', '--'] + cmd, name, stdout=subprocess.PIPE)
                  for cmd in cmds]
            outs = []
            for p in ps:
                out = p.stdout.read().decode()
                p.wait(300)
                p.stdout.close()
                d = kv(out)
                if p.returncode != 0 or d.get('status') != 0:
                    raise BenchError(f'{name}: {tail(p.logpath, 8)}')
                outs.append(d['ns'])
            return now_ns() - t0, outs

        def one(c, rep):
            per = []
            rss = None
            if c == 'sandvm':
                ids = [self.sv_id(f'c{rep}x{k}') for k in range(n)]
                try:
                    for vid in ids:
                        self.sv_create(vid, arch)
                    total, per = parallel([self.sv('start', '--paused', vid) for vid in ids],
                                          'sandvm-start')
                    _, kib, found = self.sandvm_resident()
                    rss = kib / 1024 / n
                    if found:
                        self.res.note(fig, m_rss, arch, c, 'MiB', '; '.join(found))
                finally:
                    for vid in ids:
                        self.sv_stop(vid)
            elif c == 'raw':
                socks = [os.path.join(self.tmp, f'c{rep}x{k}.qmp') for k in range(n)]
                t0 = now_ns()
                ps = [self.spawn([self.svb, 'qemu-start', s, '--'] + self.raw_argv(g, 'paused'),
                                 'raw-start', stdout=subprocess.PIPE) for s in socks]
                started = []
                for p in ps:
                    out = p.stdout.read().decode()
                    p.wait(300)
                    p.stdout.close()
                    if p.returncode == 0:
                        started.append(kv(out))
                total = now_ns() - t0
                for s, d in zip(socks, started):
                    self.raw_quit(s, d['pid'])
                if len(started) != n:
                    raise BenchError(f'only {len(started)} of {n} raw QEMUs started')
                per = [d['ns'] for d in started]
                rss = 0.0
            elif c == 'libvirt':
                lv = self.need_libvirt()
                names = [f'svb{self.token}-c{rep}x{k}' for k in range(n)]
                try:
                    xmls = [lv.domain_xml(nm, g, self.initrd(g, 'none')) for nm in names]
                    total, per = parallel([lv.virsh('create', x, '--paused') for x in xmls],
                                          'virsh-create')
                    rss = lv.rss_kib() / 1024 / n
                finally:
                    for nm in names:
                        lv.destroy(nm)
            elif c == 'govmm':
                gv = self.need_govmm()
                ids = [f'svb{self.token}-gc{rep}x{k}' for k in range(n)]
                d = gv.request({'op': 'launch-many',
                                'vms': [gv.spec(v, g, self.initrd(g, 'none'), paused=True)
                                        for v in ids]})
                total, per = d['total_ns'], d['ns']
                rss = gv.rss_kib() / 1024 / n
                for v in ids:
                    gv.request({'op': 'stop', 'id': v})
            self.res.add(fig, m_total, arch, c, 'ms', total / 1e6)
            for v in per:
                self.res.add(fig, m_per, arch, c, 'ms', v / 1e6)
            if rss is not None:
                self.res.add(fig, m_rss, arch, c, 'MiB', rss)

        self.interleave(fig, order, self.reps(3, 1), one)

    def fig_memory(self):
        fig, metric, arch = 'memory', self.metric_of('memory'), self.main_arch()
        g = self.guest(arch)
        order = ['sandvm', 'raw', 'libvirt', 'govmm']
        for c in order:
            self.res.row(fig, metric, arch, c, 'MiB')
        self.res.row(fig, 'sandvm processes per running VM', arch, 'sandvm', 'count')

        def one(c, rep):
            if c == 'sandvm':
                vid = self.sv_id(f'm{rep}')
                self.need_sandvm('create', 'start', 'exec', 'stop')
                self.sv_create(vid, arch)
                try:
                    self.run(self.sv('start', vid), 'sandvm-start')
                    self.run(self.sv('exec', vid, '--', 'true'), 'sandvm-exec-first',
                             timeout=self.args.boot_timeout)
                    count, kib, found = self.sandvm_resident()
                    if found:
                        self.res.note(fig, metric, arch, c, 'MiB', '; '.join(found))
                finally:
                    self.sv_stop(vid)
                self.res.add(fig, 'sandvm processes per running VM', arch, c, 'count', count)
                mib = kib / 1024
            elif c == 'raw':
                mib = 0.0
            elif c == 'libvirt':
                lv = self.need_libvirt()
                name = f'svb{self.token}-m{rep}'
                con = lv.console_domain(g, name)
                try:
                    mib = lv.rss_kib() / 1024
                finally:
                    con.close()
                    lv.destroy(name)
            elif c == 'govmm':
                gv = self.need_govmm()
                vid = f'svb{self.token}-gm{rep}'
                gv.request({'op': 'launch', 'vm': gv.spec(vid, g, self.initrd(g, 'print'),
                                                          paused=False)})
                mib = gv.rss_kib() / 1024
                gv.request({'op': 'stop', 'id': vid})
            self.res.add(fig, metric, arch, c, 'MiB', mib)

        self.interleave(fig, order, self.reps(3, 1), one)

    def fig_qemu_rss(self):
        fig, metric, arch = 'qemu-rss', self.metric_of('qemu-rss'), self.main_arch()
        g = self.guest(arch)
        order = ['sandvm', 'kata-argv']
        for c in order:
            self.res.row(fig, metric, arch, c, 'MiB')

        def one(c, rep):
            if c == 'sandvm':
                vid = self.sv_id(f'k{rep}')
                self.need_sandvm('create', 'start', 'exec', 'stop')
                self.sv_create(vid, arch)
                try:
                    self.run(self.sv('start', vid), 'sandvm-start')
                    self.run(self.sv('exec', vid, '--', 'true'), 'sandvm-exec-first',
                             timeout=self.args.boot_timeout)
                    time.sleep(2)
                    pids = self.sv_pids(vid)
                    if not pids:
                        raise BenchError('no QEMU found for the sandvm VM')
                    kib = rss_kib(pids[0])
                finally:
                    self.sv_stop(vid)
            else:
                kib = self.kata_rss(g, rep)
            self.res.add(fig, metric, arch, c, 'MiB', kib / 1024)

        self.interleave(fig, order, self.reps(3, 1), one)

    def kata_rss(self, g, rep):
        """QEMU RSS with Kata's default amd64 argv (configuration-qemu.toml defaults as
        rendered by govmm, kata-hypervisor.md) for sandvm's guest size, booted to the
        job. Deviations, forced by this host: accel tcg and -cpu max (no KVM), legacy
        serial console (Debian's virtio_console is a module, so hvc0 would be silent),
        the initrd instead of the nvdimm image, no vhost-vsock (no /dev/vhost-vsock)."""
        d = os.path.join(self.tmp, f'kata{rep}')
        os.makedirs(d)
        share = os.path.join(d, 'shared')
        os.makedirs(share)
        fs_sock = os.path.join(d, 'vhost-fs.sock')
        con_sock = os.path.join(d, 'console.sock')
        virtiofsd = '/usr/lib/qemu/virtiofsd'
        vfs = self.spawn([virtiofsd, f'--socket-path={fs_sock}', '-o', f'source={share}',
                          '-o', 'cache=auto', '-o', 'no_posix_lock', '--thread-pool-size=1'],
                         'virtiofsd')
        deadline = time.monotonic() + 10
        while not os.path.exists(fs_sock):
            if vfs.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f'virtiofsd did not start: {tail(vfs.logpath)}')
            time.sleep(0.01)
        ncpu = os.cpu_count() or 1
        host_mib = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // (1 << 20)
        vid = f'svb{self.token}-kata{rep}'
        argv = [
            QEMU_BIN['x86_64'], '-name', f'sandbox-{vid}', '-uuid', str(uuid.uuid4()),
            '-machine', 'q35,accel=tcg', '-cpu', 'max,pmu=off',
            '-qmp', f'unix:{d}/qmp.sock,server=on,wait=off',
            '-m', f'{MEMORY_MIB}M,slots=10,maxmem={host_mib + 1024}M',
            '-device', 'pci-bridge,bus=pcie.0,id=pci-bridge-0,chassis_nr=1,shpc=off,addr=2,'
                       'io-reserve=4k,mem-reserve=1m,pref64-reserve=1m',
            '-device', 'virtio-serial-pci,disable-modern=false,id=serial0',
            '-chardev', f'socket,id=charconsole0,path={con_sock},server=on,wait=off',
            '-serial', 'chardev:charconsole0',
            '-device', 'virtio-scsi-pci,id=scsi0,disable-modern=false',
            '-object', 'rng-random,id=rng0,filename=/dev/urandom',
            '-device', 'virtio-rng-pci,rng=rng0',
            '-chardev', f'socket,id=char-fs0,path={fs_sock}',
            '-device', 'vhost-user-fs-pci,chardev=char-fs0,tag=kataShared,queue-size=1024',
            '-rtc', 'base=utc,driftfix=slew,clock=host',
            '-global', 'kvm-pit.lost_tick_policy=discard',
            '-vga', 'none', '-no-user-config', '-nodefaults', '-nographic', '--no-reboot',
            '-object', f'memory-backend-file,id=dimm1,size={MEMORY_MIB}M,mem-path=/dev/shm,'
                       'share=on',
            '-numa', 'node,memdev=dimm1',
            '-kernel', g['kernel'], '-initrd', self.initrd(g, 'shell'),
            '-append', f'{KATA_KERNEL_PARAMS} console=ttyS0 quiet panic=1 nr_cpus={ncpu} '
                       'selinux=0 scsi_mod.scan=none',
            '-pidfile', f'{d}/pid',
            '-smp', f'1,cores=1,threads=1,sockets={ncpu},maxcpus={ncpu}',
        ]
        q = self.spawn(argv, 'kata-qemu')
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            deadline = time.monotonic() + 30
            while True:
                try:
                    s.connect(con_sock)
                    break
                except OSError:
                    if q.poll() is not None or time.monotonic() > deadline:
                        raise BenchError(f'Kata-argv QEMU did not start: {tail(q.logpath)}')
                    time.sleep(0.01)
            con = Console(s.fileno(), s.fileno(), 'kata-console')
            con.wait(self.pattern, self.args.boot_timeout)
            con.run('true')
            time.sleep(2)
            kib = rss_kib(q.pid)
            s.close()
            return kib
        finally:
            self.kill(q)
            self.kill(vfs)

    # ---- reliability --------------------------------------------------------

    def reliability(self, n):
        """Boots every arch's default config n times, alternating `sandvm run -- true`
        and the lifecycle (create, start, exec -- true, stop), one boot at a time, each
        under a deadline; counts successes, failures and hangs per arch and path."""
        self.need_sandvm('run')
        paths = ['run']
        if not self.args.reliability_run_only:
            try:
                self.need_sandvm('create', 'start', 'exec', 'stop')
                paths.append('lifecycle')
            except NotAvailable as e:
                log(f'reliability: run only ({e})')
        rows = {}
        for arch in self.args.arch:
            self.guest(arch)
            for path in paths:
                rows[(arch, path)] = {'arch': arch, 'path': path, 'boots': 0, 'ok': 0,
                                      'failed': 0, 'hung': 0, 'times': []}
            for i in range(n):
                path = paths[i % len(paths)]
                r = rows[(arch, path)]
                r['boots'] += 1
                t0 = time.monotonic()
                outcome, text = self.boot_once(arch, path, i)
                if outcome == 'ok':
                    r['ok'] += 1
                    r['times'].append(time.monotonic() - t0)
                else:
                    r[outcome] += 1
                    self.keep_failure(arch, f'{path} boot {i + 1}', outcome, text)
                if (i + 1) % 10 == 0 or i + 1 == n:
                    log(f'reliability {arch}: {i + 1}/{n}: ' + ', '.join(
                        f'{p}: {rows[(arch, p)]["ok"]} ok {rows[(arch, p)]["failed"]} failed '
                        f'{rows[(arch, p)]["hung"]} hung' for p in paths))
        out = []
        for r in rows.values():
            t = r.pop('times')
            r['median_s'] = statistics.median(t) if t else None
            r['max_s'] = max(t) if t else None
            out.append(r)
        return out

    def boot_once(self, arch, path, i):
        """One boot: ('ok' | 'failed' | 'hung', log tail)."""
        deadline = self.args.boot_timeout
        lf = self.logfile(f'rel-{arch}-{path}-{i}')

        def run(argv, limit):
            with open(lf, 'ab') as f:
                f.write(('$ ' + ' '.join(argv) + '\n').encode())
                f.flush()
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                     start_new_session=True)
                self.procs.append(p)
                try:
                    return p.wait(limit)
                except subprocess.TimeoutExpired:
                    self.kill(p)
                    return None
                finally:
                    self.procs.remove(p)

        if path == 'run':
            rc = run([self.sandvm_bin, 'run', '--arch', arch, '--timeout', str(deadline),
                      '--', 'true'], deadline + 30)
            text = tail(lf, 30)
            if rc == 0:
                return 'ok', text
            if rc is None or re.search(r'timed? ?out|has not started', text, re.I):
                return 'hung', text
            return 'failed', text
        vid = self.sv_id(f'rel{i}')
        try:
            if run(self.sv('create', '--arch', arch, vid), 600) != 0:
                return 'failed', tail(lf, 30)
            if run(self.sv('start', vid), 60) != 0:
                return 'failed', tail(lf, 30)
            rc = run(self.sv('exec', '--timeout', str(deadline), vid, '--', 'true'), deadline + 30)
            text = tail(lf, 30)
            if rc == 0:
                return 'ok', text
            # 125: the agent did not answer within the deadline (or sandvm failed)
            if rc is None or re.search(r'timed? ?out|did not answer', text, re.I):
                return 'hung', text
            return 'failed', text
        finally:
            run(self.sv('stop', '--grace', '0', vid), 60)
            run(self.sv('delete', '--force', vid), 60)

    def keep_failure(self, arch, which, what, text):
        self.failures = getattr(self, 'failures', [])
        self.failures.append(f'### {arch} {which}: {what}\n\n```\n{text}\n```\n')


def tsc_khz_param():
    """microvm has no PIT-independent timer reference: under TCG the kernel's TSC
    calibration against the PIT fails now and then (the boot then hangs); the host's
    TSC rate is the guest's under TCG, so hand it over."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('cpu MHz'):
                    return f'tsc_early_khz={int(float(line.split(":")[1]) * 1000)} '
    except (OSError, ValueError):
        pass
    return ''


class Libvirt:
    """libvirtd + virtlogd started by hand as root (Debian 12, no systemd) on a private
    socket; everything they need that is not there is created, and removed again."""

    PATHS = ('/etc/libvirt', '/run/libvirt', '/var/lib/libvirt', '/var/cache/libvirt',
             '/var/log/libvirt')

    def __init__(self, bench):
        self.b = bench
        self.dir = os.path.join(bench.tmp, 'libvirt')
        os.makedirs(self.dir)
        self.uri = f'qemu:///system?socket={self.dir}/libvirt-sock'
        self.error = None
        self.snapshot = {}
        self.qemu_conf_backup = None
        self.created_user = False
        self.libvirtd = self.virtlogd = None
        self.domains = set()

    def setup(self):
        try:
            self._setup()
        except (BenchError, OSError) as e:
            self.error = f'libvirt setup failed: {e}'
            log(self.error)

    def _setup(self):
        for p in ('/usr/sbin/libvirtd', '/usr/sbin/virtlogd', '/usr/bin/virsh'):
            if not os.access(p, os.X_OK):
                raise BenchError(f'{p} missing (libvirt-daemon, libvirt-clients)')
        if os.path.exists('/run/libvirt/virtlogd-sock') or os.path.exists('/run/libvirtd.pid'):
            raise BenchError('a libvirtd/virtlogd already runs here (/run/libvirt); not touching it')
        for p in self.PATHS:
            self.snapshot[p] = set(os.listdir(p)) if os.path.isdir(p) else None
        try:
            pwd.getpwnam('libvirt-qemu')
        except KeyError:
            # Debian's libvirtd parses its built-in default user before qemu.conf
            subprocess.run(['useradd', '--system', '--no-create-home', '--home-dir',
                            '/nonexistent', '--shell', '/usr/sbin/nologin', 'libvirt-qemu'],
                           check=True)
            self.created_user = True
        conf = '/etc/libvirt/qemu.conf'
        if os.path.exists(conf):
            with open(conf, 'rb') as f:
                self.qemu_conf_backup = (f.read(), os.stat(conf).st_mode & 0o7777)
        os.makedirs('/etc/libvirt', exist_ok=True)
        with open(conf, 'w') as f:
            # QEMU as root, as sandvm's and the raw runs are (the guest assets live
            # under root's cache).
            f.write('# written by sandvm bench/run; removed when it ends\n'
                    'user = "root"\ngroup = "root"\n')
        with open(os.path.join(self.dir, 'libvirtd.conf'), 'w') as f:
            f.write(f'unix_sock_dir = "{self.dir}"\nunix_sock_rw_perms = "0700"\n'
                    'auth_unix_rw = "none"\nauth_unix_ro = "none"\n')
        self.virtlogd = self.b.spawn(['/usr/sbin/virtlogd', '--pid-file',
                                      os.path.join(self.dir, 'virtlogd.pid')], 'virtlogd')
        deadline = time.monotonic() + 20
        while not os.path.exists('/run/libvirt/virtlogd-sock'):
            if self.virtlogd.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f'virtlogd did not start: {tail(self.virtlogd.logpath)}')
            time.sleep(0.05)
        self.libvirtd = self.b.spawn(['/usr/sbin/libvirtd', '--config',
                                      os.path.join(self.dir, 'libvirtd.conf'), '--pid-file',
                                      os.path.join(self.dir, 'libvirtd.pid')], 'libvirtd')
        log('libvirt: waiting for libvirtd (it probes every QEMU binary on first start)')
        deadline = time.monotonic() + 300
        while True:
            r = subprocess.run(self.virsh('version'), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                break
            if self.libvirtd.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f'libvirtd did not come up: {tail(self.libvirtd.logpath)}')
            time.sleep(0.2)
        log('libvirt: up')

    def virsh(self, *args):
        return ['virsh', '-q', '-c', self.uri] + list(args)

    def run_virsh(self, *args, timeout=120):
        return self.b.run(self.virsh(*args), f'virsh-{args[0]}', timeout=timeout)

    def domain_xml(self, name, g, initrd, console_sock=None, root_ports=0, cmdline=None):
        self.domains.add(name)
        arch = g['arch']
        con = g['console']
        cmd = cmdline or f'console={con} quiet panic=-1'
        dev = []
        if console_sock:
            if arch == 's390x':
                dev.append(f"<console type='unix'><source mode='bind' path='{console_sock}'/>"
                           "<target type='sclp' port='0'/></console>")
            else:
                dev.append(f"<serial type='unix'><source mode='bind' path='{console_sock}'/>"
                           "<target port='0'/></serial>")
        if root_ports:
            # spare ports for hot-plug (q35's pcie.0 itself takes none)
            dev.append("<controller type='pci' index='0' model='pcie-root'/>")
            dev += [f"<controller type='pci' index='{k + 1}' model='pcie-root-port'/>"
                    for k in range(root_ports)]
        features = '<features><acpi/><apic/></features>' if arch == 'x86_64' else ''
        cpu = ("<cpu mode='custom' match='exact'><model fallback='forbid'>max</model></cpu>"
               if arch == 'aarch64' else '')
        xml = f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{MEMORY_MIB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='{arch}' machine='{MACHINE[arch]}'>hvm</type>
    <kernel>{g['kernel_libvirt'] if 'kernel_libvirt' in g else g['kernel']}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmd}</cmdline>
  </os>
  {features}{cpu}
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/{QEMU_BIN[arch]}</emulator>
    {''.join(dev)}
  </devices>
</domain>
"""
        path = os.path.join(self.dir, f'{name}.xml')
        with open(path, 'w') as f:
            f.write(xml)
        return path

    def qemu_pid(self, name):
        with open(f'/run/libvirt/qemu/{name}.pid') as f:
            return int(f.read().strip())

    def destroy(self, name):
        subprocess.run(self.virsh('destroy', name), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)

    def console_domain(self, g, name, root_ports=0, kind='shell'):
        """A running domain whose job is the console shell; returns its Console (a
        socket connected to the guest's serial port), ready for commands."""
        sock_path = os.path.join(self.dir, f'{name}.con')
        xml = self.domain_xml(name, g, self.b.initrd(g, kind), console_sock=sock_path,
                              root_ports=root_ports)
        self.run_virsh('create', xml)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock_path)
        con = Console(s.fileno(), s.fileno(), f'libvirt-console-{name}')
        con.sock = s
        con.close = s.close
        con.wait(self.b.pattern, self.b.args.boot_timeout)
        if kind == 'shell':
            con.run('mkfifo /tmp/svbp && exec 3<>/tmp/svbp')
        return con

    def boot(self, g, name):
        """ns from `virsh create` to the job's output on the serial console (connected
        as soon as virsh returns, long before the guest prints anything)."""
        sock_path = os.path.join(self.dir, f'{name}.con')
        if g['arch'] == 'x86_64':
            g = dict(g, kernel_libvirt=self.b.debian_vmlinuz(g))
        xml = self.domain_xml(name, g, self.b.initrd(g, 'print'), console_sock=sock_path)
        t0 = now_ns()
        try:
            self.run_virsh('create', xml)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock_path)
            try:
                con = Console(s.fileno(), None, f'libvirt-{name}')
                t1 = con.wait(self.b.pattern, self.b.args.boot_timeout)
            finally:
                s.close()
            return t1 - t0
        finally:
            self.destroy(name)

    def rss_kib(self):
        return sum(rss_kib(p.pid) or 0 for p in (self.libvirtd, self.virtlogd) if p)

    def teardown(self):
        if self.libvirtd and self.libvirtd.poll() is None:
            r = subprocess.run(self.virsh('list', '--name'), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=60)
            for name in r.stdout.decode().split():
                if name.startswith(f'svb{self.b.token}'):
                    self.destroy(name)
        for p in (self.libvirtd, self.virtlogd):
            if p:
                self.b.kill(p, signal.SIGTERM)
                self.b.kill(p)
        for path, before in self.snapshot.items():
            if before is None:
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.isdir(path):
                for e in set(os.listdir(path)) - before:
                    full = os.path.join(path, e)
                    if os.path.isdir(full) and not os.path.islink(full):
                        shutil.rmtree(full, ignore_errors=True)
                    else:
                        os.unlink(full)
        conf = '/etc/libvirt/qemu.conf'
        if self.qemu_conf_backup is not None:
            data, mode = self.qemu_conf_backup
            with open(conf, 'wb') as f:
                f.write(data)
            os.chmod(conf, mode)
        if self.created_user:
            subprocess.run(['userdel', 'libvirt-qemu'], check=False)
            try:
                grp.getgrnam('libvirt-qemu')
                subprocess.run(['groupdel', 'libvirt-qemu'], check=False)
            except KeyError:
                pass
        log('libvirt: stopped, and its files, user and qemu.conf removed')


class Govmm:
    def __init__(self, bench):
        self.b = bench
        self.p = bench.spawn([bench.govmm_bin], 'govmm', stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)

    def spec(self, vid, g, initrd, paused):
        d = os.path.join(self.b.tmp, vid)
        os.makedirs(d, exist_ok=True)
        return {'id': vid, 'dir': d, 'qemu': f'/usr/bin/{QEMU_BIN[g["arch"]]}',
                'machine': MACHINE[g['arch']], 'accel': 'tcg', 'memory': f'{MEMORY_MIB}M',
                'kernel': g['kernel'], 'initrd': initrd,
                'append': f'console={g["console"]} quiet panic=-1', 'paused': paused}

    def request(self, req, timeout=600):
        self.p.stdin.write(json.dumps(req).encode() + b'\n')
        self.p.stdin.flush()
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        line = self.p.stdout.readline() if r else b''
        if not line:
            raise BenchError(f'govmm manager: no answer to {req["op"]}: {tail(self.p.logpath)}')
        d = json.loads(line)
        if 'error' in d:
            raise BenchError(f'govmm {req["op"]}: {d["error"]}')
        return d

    def rss_kib(self):
        return self.request({'op': 'rss'})['rss_kb']

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write(b'{"op":"exit"}\n')
                self.p.stdin.flush()
                self.p.wait(60)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.b.kill(self.p)


# ---- output -------------------------------------------------------------------

def environment(bench):
    def cmd_out(argv):
        try:
            return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  timeout=20).stdout.decode().strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return '?'
    g = bench.guests.get('x86_64') or next(iter(bench.guests.values()), None)
    return {
        'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        'host': f'{os.uname().nodename} {os.uname().release}, {os.cpu_count()} CPUs, '
                f'{os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 30} GiB',
        'qemu': cmd_out(['qemu-system-x86_64', '--version']),
        'libvirt': cmd_out(['libvirtd', '--version']),
        'go': cmd_out(['go', 'version']),
        'sandvm': cmd_out(['git', '-C', SRC, 'describe', '--always', '--dirty']),
        'guest kernel': g['manifest']['kernel_release'] if g else '?',
        'mode': 'quick' if bench.args.quick else 'full',
    }


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def write_results(bench, env, outdir):
    rows = bench.res.table()
    os.makedirs(outdir, exist_ok=True)
    cols = ['figure', 'metric', 'arch', 'contender', 'n', 'median', 'min', 'max', 'unit',
            'sandvm/this', 'target', 'met', 'note']
    with open(os.path.join(outdir, 'results.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([r['figure'], r['metric'], r['arch'], r['contender'], r['n'],
                        '' if r['median'] is None else f'{r["median"]:.6g}',
                        '' if r['min'] is None else f'{r["min"]:.6g}',
                        '' if r['max'] is None else f'{r["max"]:.6g}', r['unit'],
                        '' if r['ratio'] is None else f'{r["ratio"]:.3f}', r['target'],
                        r['met'], r['note']])
    with open(os.path.join(outdir, 'samples.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['figure', 'metric', 'arch', 'contender', 'unit', 'value'])
        for r in rows:
            for v in r['samples']:
                w.writerow([r['figure'], r['metric'], r['arch'], r['contender'], r['unit'],
                            f'{v:.6g}'])
    md = ['# sandvm benchmark results', '']
    for k, v in env.items():
        md.append(f'- {k}: {v}')
    md += ['', '| figure | metric | arch | contender | n | median | min | max | unit | '
               'sandvm/this | target | met |',
           '|---|---|---|---|---:|---:|---:|---:|---|---:|---|---|']
    for r in rows:
        if r['n'] == 0:
            med = r['note'] or 'n/a'
            mn = mx = ''
        else:
            med, mn, mx = (fmt(r[k], r['unit']) for k in ('median', 'min', 'max'))
        ratio = '' if r['ratio'] is None else f'{r["ratio"]:.2f}'
        md.append(f'| {r["figure"]} | {r["metric"]} | {r["arch"]} | {r["contender"]} | '
                  f'{r["n"]} | {med} | {mn} | {mx} | {r["unit"]} | {ratio} | {r["target"]} | '
                  f'{r["met"]} |')
    notes = [r for r in rows if r['n'] and r['note']]
    if notes:
        md += ['', 'Notes:']
        md += [f'- {r["figure"]}/{r["contender"]}: {r["note"]}' for r in notes]
    md += ['', 'Contenders:', '']
    used = {r['contender'] for r in rows}
    md += [f'- `{c}`: {d}' for c, d in CONTENDERS.items() if c in used]
    text = '\n'.join(md) + '\n'
    with open(os.path.join(outdir, 'results.md'), 'w') as f:
        f.write(text)
    plot_boot(bench, rows, outdir)
    return text


def plot_boot(bench, rows, outdir):
    boot = [r for r in rows if r['figure'] == 'boot']
    if not boot or not shutil.which('gnuplot'):
        return
    series = ['sandvm', 'raw-defaults', 'raw-best', 'libvirt']
    titles = {'sandvm': 'sandvm', 'raw-defaults': 'raw QEMU, defaults',
              'raw-best': 'raw QEMU, best known', 'libvirt': 'libvirt'}
    arches = [a for a in ARCHES if any(r['arch'] == a for r in boot)]
    series = [s for s in series if any(r['contender'] == s and r['n'] for r in boot)]
    if not series:
        return
    dat = os.path.join(outdir, 'boot.dat')
    with open(dat, 'w') as f:
        f.write('# arch ' + ' '.join(f'{s}_median {s}_min {s}_max' for s in series) + '\n')
        for a in arches:
            vals = []
            for s in series:
                r = next((r for r in boot if r['arch'] == a and r['contender'] == s), None)
                if r and r['n']:
                    vals += [f'{r["median"]:.3f}', f'{r["min"]:.3f}', f'{r["max"]:.3f}']
                else:
                    vals += ['?', '?', '?']
            f.write(f'{a} ' + ' '.join(vals) + '\n')
    plots = []
    for i, s in enumerate(series):
        c = 2 + 3 * i
        plots.append(f"'{dat}' using {c}:{c + 1}:{c + 2}{':xtic(1)' if i == 0 else ''} "
                     f"title '{titles[s]}'")
    gp = f"""set terminal pngcairo noenhanced size 960,540 font 'sans,11'
set output '{os.path.join(outdir, "boot.png")}'
set datafile missing '?'
set title 'Boot to first guest command (TCG, {MEMORY_MIB} MiB, 1 vCPU): median, bars min-max'
set ylabel 'seconds'
set yrange [0:*]
set grid ytics
set key outside top center horizontal
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
plot {', '.join(plots)}
"""
    with open(os.path.join(outdir, 'boot.gp'), 'w') as f:
        f.write(gp)
    r = subprocess.run(['gnuplot', os.path.join(outdir, 'boot.gp')], stderr=subprocess.PIPE)
    if r.returncode != 0:
        log(f'gnuplot failed: {r.stderr.decode()[-300:]}')


# ---- main ---------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog='bench/run', formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Measures sandvm against raw QEMU, libvirt and govmm on the same default\n'
                    'guest, every contender once per repetition in turn, and writes\n'
                    'bench/results/<timestamp>/. Figures and contenders: docs/performance.md.')
    ap.add_argument('--no-install', action='store_true',
                    help='(bench/run) do not apt-get install missing packages')
    ap.add_argument('--quick', action='store_true',
                    help='few repetitions, x86_64 only, 2 concurrent VMs instead of 20')
    ap.add_argument('--arch', nargs='+', choices=ARCHES, metavar='ARCH',
                    help='arches for the boot figure and --reliability (default: all; '
                         '--quick: x86_64)')
    ap.add_argument('--only', nargs='+', choices=FIGURES, metavar='FIGURE',
                    help=f'figures to measure (default all): {", ".join(FIGURES)}')
    ap.add_argument('--reps', type=int, help='repetitions of every figure (overrides defaults)')
    ap.add_argument('--concurrent', type=int, help='VMs started at once (default 20; quick 2)')
    ap.add_argument('--reliability', type=int, metavar='N',
                    help='instead of the figures: boot every arch\'s default config N times '
                         '(alternately sandvm run and create/start/exec) and count failures '
                         'and hangs (N=200 for the issue\'s figure)')
    ap.add_argument('--investigate', choices=('boot', 'hang', 'start', 'qmp'),
                    help='instead of the figures: compare variants behind a default alternately '
                         'and print medians (bench/investigate.py; --variants, --reps, --arch)')
    ap.add_argument('--variants', nargs='+', metavar='SPEC',
                    help='with --investigate boot|hang: the variants (BASE[+MOD...]; '
                         '--investigate boot --variants help lists them)')
    ap.add_argument('--reliability-run-only', action='store_true',
                    help='with --reliability: only `sandvm run`, not the lifecycle verbs')
    ap.add_argument('--boot-timeout', type=int, default=120, metavar='SEC',
                    help='deadline of one boot (default 120)')
    ap.add_argument('--no-libvirt', action='store_true', help='skip the libvirt peer')
    ap.add_argument('--no-govmm', action='store_true', help='skip the govmm peer')
    ap.add_argument('--sandvm', help='the sandvm binary (default: the bench build\'s)')
    ap.add_argument('--out', help='results directory (default bench/results/<timestamp>)')
    ap.add_argument('--keep-tmp', action='store_true', help='keep the private temp dir (logs)')
    a = ap.parse_args(argv)
    if not a.arch:
        a.arch = ['x86_64'] if a.quick else list(ARCHES)
    if a.reps is not None and a.reps < 1:
        ap.error('--reps must be at least 1')
    if a.concurrent is not None and a.concurrent < 1:
        ap.error('--concurrent must be at least 1')
    return a


def main(argv):
    args = parse_args(argv)
    if os.geteuid() != 0:
        print('bench/run: run it as root (libvirtd, useradd, QEMU as root)', file=sys.stderr)
        return 2

    def on_signal(sig, frame):
        raise KeyboardInterrupt(f'signal {sig}')
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    bench = Bench(args)
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    outdir = args.out or os.path.join(HERE, 'results', stamp)
    load_start = loadavg()
    rc = 0
    try:
        if args.investigate:
            import investigate
            if args.variants == ['help']:
                print(investigate.BOOT_HELP)
                return 0
            rc = investigate.main(bench, args)
        elif args.reliability:
            rows = bench.reliability(args.reliability)
            os.makedirs(outdir, exist_ok=True)
            md = ['# sandvm boot reliability', '',
                  f'- date: {datetime.datetime.now().astimezone().isoformat(timespec="seconds")}',
                  f'- load average at start: {load_start}, at end: {loadavg()}',
                  f'- boots alternate between `run` (`sandvm run --arch ARCH --timeout '
                  f'{args.boot_timeout} -- true`) and `lifecycle` (`create --arch ARCH`, `start`,'
                  f' `exec --timeout {args.boot_timeout} -- true`, `stop`); hung = no answer '
                  f'within {args.boot_timeout} s', '',
                  '| arch | path | boots | ok | failed | hung | median s | max s |',
                  '|---|---|---:|---:|---:|---:|---:|---:|']
            for r in rows:
                md.append(f'| {r["arch"]} | {r["path"]} | {r["boots"]} | {r["ok"]} | '
                          f'{r["failed"]} | {r["hung"]} | {fmt(r["median_s"], "s")} | '
                          f'{fmt(r["max_s"], "s")} |')
            md += [''] + getattr(bench, 'failures', [])
            text = '\n'.join(md) + '\n'
            with open(os.path.join(outdir, 'reliability.md'), 'w') as f:
                f.write(text)
            with open(os.path.join(outdir, 'reliability.csv'), 'w', newline='') as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ['arch'])
                w.writeheader()
                w.writerows(rows)
            print(text)
            rc = 0 if all(r['ok'] == r['boots'] for r in rows) else 1
        else:
            figures = args.only or list(FIGURES)
            for fig in FIGURES:
                if fig not in figures:
                    continue
                log(f'== {fig}')
                try:
                    getattr(bench, 'fig_' + fig.replace('-', '_'))()
                except (BenchError, NotAvailable, OSError, subprocess.SubprocessError) as e:
                    log(f'{fig}: {e}')
                    bench.res.note(fig, bench.metric_of(fig), bench.main_arch(), 'sandvm', '',
                                   f'error: {str(e)[:300]}')
                finally:
                    bench.end_figure()
            env = environment(bench)
            env['load average'] = f'{load_start} at start, {loadavg()} at end'
            text = write_results(bench, env, outdir)
            print(text)
            log(f'results in {outdir}')
    except KeyboardInterrupt as e:
        log(f'interrupted ({e}); cleaning up')
        rc = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bench.cleanup()
    return rc


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
