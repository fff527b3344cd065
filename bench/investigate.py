"""bench/run --investigate: the measurements behind sandvm's defaults.

Each investigation runs its variants alternately (every variant once per
repetition, the order rotating), so a slow phase of a shared machine spreads
over all of them, and prints medians. docs/performance.md says which choice
each table decided.

  --investigate boot [--variants SPEC...] [--arch A] [--reps N]
      Boot to the job's output, per stage of the guest's init (time of the
      first console byte, the init/modules/mounts/command stage markers and
      the job's output), for command-line variants written as
      BASE[+MOD...]; see BOOT_HELP.
  --investigate hang --variants SPEC [--reps N]
      Boots one variant N times and counts hangs (no job output within
      --boot-timeout); keeps the console of every hang.
  --investigate start [--reps N]
      exec -> first QMP reply of a paused QEMU: raw QEMU with the bench's
      plain argv, raw QEMU with sandvm's argv (the same plain C client), and
      `sandvm start --paused`, to split QEMU's own start time from sandvm's.
  --investigate qmp [--reps N]
      One QMP round trip: the plain C client with command lines of
      different lengths (QEMU 7.2 reads QMP one byte per main-loop
      iteration), and sandvm's client.
"""

import json
import os
import re
import select
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BOOT_HELP = """Boot variants: BASE[+MOD...]

BASE
  run           `sandvm run --arch A -v -- printf ...` (the real CLI); MODs: cfg:KEY=JSON
                (a config key, e.g. cfg:machine_type=\\"microvm\\"), append:PARAMS
  lifecycle     sandvm create (untimed), start, exec -- printf ... (the real CLI); MODs: cfg:
  argv          the QEMU argv `sandvm run` builds (bench/svbench-sandvm run-argv), console
                on stdio, with the guest's init and a job that prints the marker
  life-argv     the QEMU argv `sandvm start` builds for a lifecycle VM (agent port, QMP),
                with a job (so the guest's init runs the job instead of the agent)
  raw           QEMU's defaults (bench: raw-defaults, minus the bzImage): -machine <arch's>
  best          bench's raw-best (x86_64): microvm, Kata's parameters, rdinit=busybox printf

MOD (applied in order)
  m=MACHINE[,OPTS]   -machine (accel kept)       bios=FILE      -bios FILE
  cpu=MODEL[,FEAT]   -cpu                        dev-=PREFIX    drop -device/-object PREFIX...
  opt-=OPTION        drop OPTION (e.g. -sandbox) and its value
  p=PARAM            append a kernel parameter (p=tsc_early_khz=host: the host's TSC rate)
  -p=PREFIX          drop kernel parameters starting with PREFIX
  bl=FN[,FN]         initcall_blacklist=FN,...
  initrd=gz|raw|lz4|zstd|xz   the guest's initramfs recompressed (default: as built)
  mods=none|A,B,...  the module list init loads (an override of sandvm.modules)
  init=FILE          replace the guest's /init with FILE
  add=DEST:SRC       add the file SRC to the initramfs as DEST ({rel}: the kernel release)
  links              busybox applet symlinks in the initramfs (init's --install then finds them)
  trivial            rdinit=/bin/busybox -- printf <marker>: no init script, no modules
"""

STAGES = ('first', 'init', 'modules', 'mounts', 'command', 'job', 'cpu')


def log(msg):
    print(f'investigate: {msg}', file=sys.stderr, flush=True)


# ---- cpio (newc), the format of the guest's initramfs -------------------------------

def newc(entries):
    """An uncompressed newc archive. entries: (name, kind, data) with kind 'dir',
    'file' (data: bytes), 'symlink' (data: target str)."""
    out = bytearray()

    def pad():
        out.extend(b'\0' * ((4 - len(out) % 4) % 4))

    def hdr(ino, name, mode, size):
        nb = name.encode() + b'\0'
        out.extend(b'070701' + b''.join(b'%08X' % v for v in (
            ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(nb), 0)))
        out.extend(nb)
        pad()

    for i, (name, kind, data) in enumerate(entries, 1):
        if kind == 'dir':
            hdr(i, name, 0o40755, 0)
        elif kind == 'file':
            hdr(i, name, 0o100755 if name == 'init' else 0o100644, len(data))
            out.extend(data)
            pad()
        elif kind == 'symlink':
            t = data.encode()
            hdr(i, name, 0o120777, len(t))
            out.extend(t)
            pad()
    hdr(0, 'TRAILER!!!', 0, 0)
    return bytes(out)


def decompress(path):
    with open(path, 'rb') as f:
        magic = f.read(6)
    if magic[:2] == b'\x1f\x8b':
        return subprocess.run(['gzip', '-dc', path], stdout=subprocess.PIPE, check=True).stdout
    with open(path, 'rb') as f:
        return f.read()


def compress(data, how):
    cmd = {'gz': ['gzip', '-9', '-n', '-c'], 'lz4': ['lz4', '-l', '-9', '-c'],
           'zstd': ['zstd', '-19', '-q', '-c'], 'xz': ['xz', '--check=crc32', '-c']}[how]
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout


def pad4(b):
    return b + b'\0' * ((4 - len(b) % 4) % 4)


def host_tsc_khz():
    """The host's TSC rate (under TCG the guest's TSC is the host's): measured
    against CLOCK_MONOTONIC_RAW by reading /proc/cpuinfo is not enough on hosts
    whose 'cpu MHz' is the current frequency, so this reads the kernel's own
    figure from the tsc line of /proc/cpuinfo only as a fallback."""
    try:
        out = subprocess.run(['dmesg'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=5).stdout.decode()
        m = re.findall(r'tsc: Refined TSC clocksource calibration: ([\d.]+) MHz', out) or \
            re.findall(r'tsc: Detected ([\d.]+) MHz TSC', out) or \
            re.findall(r'tsc: Detected ([\d.]+) MHz processor', out)
        if m:
            return int(float(m[-1]) * 1000)
    except (OSError, subprocess.TimeoutExpired):
        pass
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('cpu MHz'):
                return int(float(line.split(':')[1]) * 1000)
    return 0


def cpu_seconds(pid):
    """CPU time of all threads of process `pid` so far (schedstat, ns precision): on a
    loaded machine the guest's work shows here while wall time also holds the waits
    for a CPU."""
    total = 0
    try:
        for t in os.listdir(f'/proc/{pid}/task'):
            with open(f'/proc/{pid}/task/{t}/schedstat') as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


# ---- boot variants --------------------------------------------------------------------

class Variant:
    def __init__(self, inv, arch, spec):
        self.inv, self.arch, self.spec = inv, arch, spec
        parts = spec.split('+')
        self.base, self.mods = parts[0], parts[1:]
        if self.base not in ('run', 'lifecycle', 'argv', 'life-argv', 'raw', 'best'):
            raise SystemExit(f'investigate: unknown boot variant base {self.base!r}\n{BOOT_HELP}')

    def config(self):
        """The config file of a run/lifecycle variant (cfg: mods), or None."""
        cfg = {}
        for m in self.mods:
            if m.startswith('cfg:'):
                k, v = m[4:].split('=', 1)
                cfg[k] = json.loads(v)
        if not cfg and self.base in ('run', 'lifecycle'):
            return None
        g = self.inv.b.guest(self.arch)
        base = {'arch': self.arch, 'kernel': g['kernel'], 'initrd': g['initramfs']}
        base.update(cfg)
        path = os.path.join(self.inv.tmp, f'cfg-{abs(hash(self.spec))}.json')
        with open(path, 'w') as f:
            json.dump(base, f)
        return path

    def argv(self):
        """(argv, stdin) of one boot; the console (or job output) on stdout."""
        b, g, arch = self.inv.b, self.inv.b.guest(self.arch), self.arch
        job = ['printf', 'SVB-%s-OK\\n', b.marker]
        if self.base == 'run':
            argv = [b.sandvm_bin, 'run', '-v', '--arch', arch]
            cfg = self.config()
            if cfg:
                argv = [b.sandvm_bin, 'run', '-v', cfg]
            for m in self.mods:
                if m.startswith('append:'):
                    argv += ['--append', m[7:]]
            return argv + ['--'] + job
        if self.base == 'best':
            return b.raw_argv(g, 'best')
        if self.base == 'raw':
            a = [self.inv.qemu(arch), '-machine', self.inv.machine(arch), '-accel', 'tcg',
                 '-m', '512', '-smp', '1', '-nodefaults', '-no-user-config', '-display', 'none',
                 '-no-reboot', '-serial', 'stdio', '-kernel', g['kernel'],
                 '-initrd', None, '-append', f'console={g["console"]} quiet panic=-1']
            if arch == 'aarch64':
                a[3:3] = ['-cpu', 'max']
        else:
            a = self.inv.sandvm_argv(arch, self.config(), self.base == 'life-argv')
        return self.apply(a, g)

    def apply(self, a, g):
        a = list(a)
        params = None
        i = a.index('-append')
        params = a[i + 1].split()
        initrd_mods = {'compression': None, 'mods': None, 'init': None, 'links': False,
                       'add': ()}
        trivial = False
        for m in self.mods:
            if m.startswith('cfg:'):
                continue
            k, _, v = m.partition('=')
            if k == 'm':
                j = a.index('-machine')
                acc = [o for o in a[j + 1].split(',') if o.startswith('accel=')]
                a[j + 1] = ','.join([v] + acc)
            elif k == 'bios':
                a += ['-bios', v]
            elif k == 'cpu':
                if '-cpu' in a:
                    a[a.index('-cpu') + 1] = v
                else:
                    a += ['-cpu', v]
            elif k == 'dev-':
                out = []
                skip = False
                for w in a:
                    if skip:
                        skip = False
                        continue
                    if out and out[-1] in ('-device', '-object') and w.startswith(v):
                        out.pop()
                        continue
                    out.append(w)
                a = out
            elif k == 'opt-':
                if v in a:
                    j = a.index(v)
                    del a[j:j + 2]
            elif k == 'p':
                if v.startswith('tsc_early_khz=host'):
                    v = f'tsc_early_khz={host_tsc_khz()}'
                params.append(v)
            elif k == '-p':
                params = [p for p in params if not p.startswith(v)]
            elif k == 'bl':
                params.append(f'initcall_blacklist={v}')
            elif k == 'initrd':
                initrd_mods['compression'] = v
            elif k == 'mods':
                initrd_mods['mods'] = v
            elif k == 'init':
                initrd_mods['init'] = v
            elif k == 'links':
                initrd_mods['links'] = True
            elif k == 'add':
                initrd_mods['add'] += (v,)
            elif k == 'trivial':
                trivial = True
            else:
                raise SystemExit(f'investigate: unknown modifier {m!r}\n{BOOT_HELP}')
        if trivial:
            params += ['rdinit=/bin/busybox', '--', 'printf', 'SVB-%s-OK\\n', self.inv.b.marker]
        i = a.index('-append')
        a[i + 1] = ' '.join(params)
        j = a.index('-initrd')
        a[j + 1] = self.inv.initrd(g, **initrd_mods)
        return a


class Investigate:
    def __init__(self, bench, args):
        self.b = bench
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix='inv-', dir=bench.tmp)
        self.nonce = 'inv' + bench.marker
        self.initrds = {}
        self.argv_cache = {}

    def qemu(self, arch):
        from __main__ import QEMU_BIN
        return QEMU_BIN[arch]

    def machine(self, arch):
        from __main__ import MACHINE
        return MACHINE[arch]

    def sandvm_argv(self, arch, config, lifecycle):
        """sandvm's QEMU argv for `run` (or `start`), with the console on stdio."""
        if not config:
            g = self.b.guest(arch)
            config = os.path.join(self.tmp, f'default-{arch}.json')
            with open(config, 'w') as f:
                json.dump({'arch': arch, 'kernel': g['kernel'], 'initrd': g['initramfs']}, f)
        key = (arch, config, lifecycle)
        if key not in self.argv_cache:
            cmd = [self.b.svb_sandvm, 'life-argv' if lifecycle else 'run-argv', config]
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if p.returncode != 0:
                raise SystemExit(f'investigate: {" ".join(cmd)}: {p.stderr.decode()}')
            self.argv_cache[key] = json.loads(p.stdout)
        a = list(self.argv_cache[key])
        out = []
        i = 0
        while i < len(a):
            w = a[i]
            if w == '-chardev' and 'id=charconsole0' in a[i + 1]:
                out += ['-chardev', 'stdio,id=charconsole0']
                i += 2
                continue
            if w == '-chardev' and ',fd=' in a[i + 1]:
                # QMP / agent sockets sandvm would pass: a path instead
                opts = re.sub(r',fd=\d+', '', a[i + 1])
                cid = re.search(r'id=([^,]+)', opts).group(1)
                out += ['-chardev', f'{opts},path={self.tmp}/{cid}-{os.getpid()}.sock']
                i += 2
                continue
            if w == '-pidfile':
                i += 2
                continue
            if w == '-S':
                i += 1
                continue
            out.append(w)
            i += 1
        return out

    def initrd(self, g, compression=None, mods=None, init=None, links=False, add=()):
        key = (g['arch'], compression, mods, init, links, add)
        if key in self.initrds:
            return self.initrds[key]
        rel = g['manifest']['kernel_release']
        extra = []
        if mods is not None:
            lst = '' if mods == 'none' else '\n'.join(mods.split(',')) + '\n'
            extra.append((f'lib/modules/{rel}/sandvm.modules', 'file', lst.encode()))
        if init:
            with open(init, 'rb') as f:
                extra.append(('init', 'file', f.read()))
        for a in add:
            dest, src = a.split(':', 1)
            with open(src, 'rb') as f:
                extra.append((dest.replace('{rel}', rel), 'file', f.read()))
        if links:
            applets = self.applets(g)
            extra += [(f'bin/{n}', 'symlink', 'busybox') for n in applets if n != 'busybox']
        job = newc([('sandvm', 'dir', None), ('sandvm/nonce', 'file', self.nonce.encode()),
                    ('sandvm/argv', 'dir', None),
                    ('sandvm/argv/0', 'file', b'printf'),
                    ('sandvm/argv/1', 'file', b'SVB-%s-OK\\n'),
                    ('sandvm/argv/2', 'file', self.b.marker.encode())])
        if compression is None:
            with open(g['initramfs'], 'rb') as f:
                base = f.read()
        else:
            raw = decompress(g['initramfs'])
            base = raw if compression == 'raw' else compress(raw, compression)
        data = pad4(base) + (newc(extra) if extra else b'') + job
        path = os.path.join(self.tmp, f'initrd-{len(self.initrds)}')
        with open(path, 'wb') as f:
            f.write(data)
        self.initrds[key] = path
        return path

    def applets(self, g):
        """busybox's applet names (from the guest's busybox, run on the host only when
        the arch matches; else the host's busybox list is a fair approximation)."""
        for bb in ('/bin/busybox', '/usr/bin/busybox'):
            if os.access(bb, os.X_OK):
                out = subprocess.run([bb, '--list'], stdout=subprocess.PIPE).stdout.decode()
                return out.split()
        raise SystemExit('investigate: links needs a host busybox (busybox-static) for the applet list')

    # ---- one boot ----

    def boot_once(self, v):
        """{stage: seconds} of one boot of variant v ('hung' when no job output)."""
        marks = {}
        if v.base == 'lifecycle':
            return self.lifecycle_once(v)
        argv = v.argv()
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        buf = b''
        deadline = t0 + self.args.boot_timeout
        pat = re.compile(rb'SANDVM-STAGE-[A-Za-z0-9_-]+:(\w+)|guest stage: (\w+)|(SVB-'
                         + self.b.marker.encode() + rb'-OK)')
        try:
            while 'job' not in marks:
                left = deadline - time.monotonic()
                r, _, _ = select.select([p.stdout], [], [], max(0, left))
                if not r:
                    marks['hung'] = True
                    break
                d = os.read(p.stdout.fileno(), 65536)
                t = time.monotonic() - t0
                if not d:
                    marks['failed'] = True
                    break
                marks.setdefault('first', t)
                buf += d
                for m in pat.finditer(buf):
                    k = (m.group(1) or m.group(2) or b'job').decode()
                    marks.setdefault(k, t)
                    if k == 'job' and v.base not in ('run', 'lifecycle'):
                        cpu = cpu_seconds(p.pid)
                        if cpu is not None:
                            marks['cpu'] = cpu
                buf = buf[-200:] if 'job' not in marks else buf
                self.console = (getattr(self, 'console', b'') + d)[-20000:]
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            p.stdout.close()
        return marks

    def lifecycle_once(self, v):
        b = self.b
        vid = b.sv_id(f'inv{abs(hash(v.spec)) % 1000}x{int(time.monotonic() * 1000) % 100000}')
        cfg = v.config()
        create = b.sv('create') + ([cfg] if cfg else ['--arch', v.arch]) + [vid]
        b.run(create, 'inv-create', timeout=600)
        marks = {}
        try:
            t0 = time.monotonic()
            b.run(b.sv('start', vid), 'inv-start')
            marks['first'] = time.monotonic() - t0
            p = b.run(b.sv('exec', '--timeout', str(self.args.boot_timeout), vid, '--',
                           'printf', 'SVB-%s-OK\\n', b.marker), 'inv-exec', check=False,
                      timeout=self.args.boot_timeout + 30)
            if p.returncode == 0:
                marks['job'] = time.monotonic() - t0
            else:
                marks['hung'] = True
        finally:
            b.sv_stop(vid)
        return marks

    # ---- investigations ----

    def boot(self):
        arch = self.args.arch[0]
        specs = self.args.variants or DEFAULT_BOOT_VARIANTS.get(arch, ['run', 'argv'])
        vs = [Variant(self, arch, s) for s in specs]
        for v in vs:
            if v.base not in ('run', 'lifecycle'):
                log(f'{v.spec}: {" ".join(shlex.quote(w) for w in v.argv())}')
        reps = self.args.reps or 10
        res = {v.spec: [] for v in vs}
        for rep in range(reps):
            k = rep % len(vs)
            for v in vs[k:] + vs[:k]:
                res[v.spec].append(self.boot_once(v))
            log(f'boot {arch}: {rep + 1}/{reps}')
        self.print_boot(arch, vs, res)

    def print_boot(self, arch, vs, res):
        w = max(len(v.spec) for v in vs) + 2
        head = f'| variant ({arch}) | ' + ' | '.join(STAGES) + ' | n | hung |'
        lines = [head, '|---|' + '---:|' * (len(STAGES) + 2)]
        for v in vs:
            rows = res[v.spec]
            cells = []
            for s in STAGES:
                xs = [r[s] for r in rows if s in r and 'job' in r]
                cells.append(f'{statistics.median(xs):.3f}' if xs else '-')
            ok = sum(1 for r in rows if 'job' in r)
            hung = sum(1 for r in rows if 'hung' in r or 'failed' in r)
            lines.append(f'| `{v.spec}` | ' + ' | '.join(cells) + f' | {ok} | {hung} |')
        # the spread of the job time, for judging differences
        lines.append('')
        for v in vs:
            xs = sorted(r['job'] for r in res[v.spec] if 'job' in r)
            if xs:
                q1, q3 = xs[len(xs) // 4], xs[(3 * len(xs)) // 4]
                lines.append(f'- `{v.spec}`: job {statistics.median(xs):.3f} s, '
                             f'quartiles {q1:.3f}-{q3:.3f}, min {xs[0]:.3f}, max {xs[-1]:.3f}')
        print('\n'.join(lines))

    def hang(self):
        arch = self.args.arch[0]
        if not self.args.variants or len(self.args.variants) != 1:
            raise SystemExit('investigate hang: one --variants SPEC')
        v = Variant(self, arch, self.args.variants[0])
        n = self.args.reps or 50
        ok = hung = 0
        times = []
        keep = os.path.join(self.b.logs, 'hangs.txt')
        for i in range(n):
            self.console = b''
            r = self.boot_once(v)
            if 'job' in r:
                ok += 1
                times.append(r['job'])
            else:
                hung += 1
                with open(keep, 'ab') as f:
                    f.write(f'\n==== boot {i + 1} of {v.spec}\n'.encode() + self.console[-4000:])
            if (i + 1) % 10 == 0 or i + 1 == n:
                log(f'hang {v.spec}: {i + 1}/{n}: {ok} ok, {hung} hung or failed')
        med = f'{statistics.median(times):.3f}' if times else '-'
        print(f'| `{v.spec}` ({arch}) | boots {n} | ok {ok} | hung/failed {hung} | median {med} s |')
        if hung:
            print(f'consoles of the hangs: {keep} (--keep-tmp keeps it)')

    def start(self):
        """exec -> first QMP reply, QEMU paused."""
        b = self.b
        arch = 'x86_64'
        g = b.guest(arch)
        sv_argv = self.sandvm_argv(arch, None, True)
        # the plain client passes its QMP socket itself: drop sandvm's QMP chardev/mon
        sv_plain = []
        i = 0
        while i < len(sv_argv):
            w = sv_argv[i]
            if w == '-chardev' and 'id=qmp' in sv_argv[i + 1]:
                i += 2
                continue
            if w == '-mon':
                i += 2
                continue
            sv_plain.append(w)
            i += 1
        sv_plain.append('-S')
        variants = {
            'raw (bench argv)': lambda: b.raw_start_paused(g, 'paused', 'inv-raw')[2],
            "raw (sandvm's argv)": lambda: self.raw_start(sv_plain),
            'sandvm start --paused': self.sandvm_start,
        }
        if self.args.variants:
            variants = {k: f for k, f in variants.items() if any(s in k for s in self.args.variants)}
        reps = self.args.reps or 20
        names = list(variants)
        res = {n: [] for n in names}
        for rep in range(reps):
            k = rep % len(names)
            for n in names[k:] + names[:k]:
                res[n].append(variants[n]() / 1e6)
        print('| start (x86_64, paused) | median ms | min | max | n |')
        print('|---|---:|---:|---:|---:|')
        for n in names:
            xs = res[n]
            print(f'| {n} | {statistics.median(xs):.1f} | {min(xs):.1f} | {max(xs):.1f} | {len(xs)} |')
        log("sandvm's argv: " + ' '.join(shlex.quote(w) for w in sv_plain))

    def raw_start(self, argv):
        sock = os.path.join(self.tmp, f'rs-{time.monotonic_ns()}.qmp')
        p = self.b.run([self.b.svb, 'qemu-start', sock, '--'] + argv, 'inv-raw-start')
        from __main__ import kv
        d = kv(p.stdout.decode())
        self.b.raw_quit(sock, d['pid'])
        return d['ns']

    def sandvm_start(self):
        b = self.b
        vid = b.sv_id(f'st{time.monotonic_ns() % 100000}')
        b.sv_create(vid, 'x86_64')
        try:
            return b.timed(b.sv('start', '--paused', vid), 'inv-sandvm-start')
        finally:
            b.sv_stop(vid)

    def qmp(self):
        """QMP round trip by command line, on one paused raw QEMU."""
        b = self.b
        g = b.guest('x86_64')
        sock, pid, _ = b.raw_start_paused(g, 'paused', 'inv-qmp')
        try:
            n = 2000
            lines = ['{"execute":"query-status"}', '{"execute":"query-status","id":1}',
                     '{"execute":"query-status","id":12345}',
                     '{ "execute": "query-status", "id": 1 }',
                     '{"execute":"query-status"}' + ' ' * 7]
            reps = self.args.reps or 3
            res = {x: [] for x in lines + ['sandvm client']}
            from __main__ import kv
            for rep in range(reps):
                p = b.run([b.svb, 'qmp-lines', sock, str(n)] + lines, 'inv-qmp-lines', timeout=600)
                for line, ns in zip(lines, p.stdout.decode().splitlines()):
                    res[line] += kv(ns)['ns']
                p = b.run([b.svb_sandvm, 'client-qmp', sock, str(n)], 'inv-client', timeout=600)
                res['sandvm client'] += kv(p.stdout.decode())['ns']
            print('| command line sent (plain C client; one connection, alternating) | bytes | '
                  'median µs |')
            print('|---|---:|---:|')
            for x in lines:
                print(f'| `{x}` | {len(x) + 1} | {statistics.median(res[x]) / 1e3:.1f} |')
            x = res['sandvm client']
            print(f'| sandvm client (`sv_qmp_execute`, query-status; separate batches) | | '
                  f'{statistics.median(x) / 1e3:.1f} |')
        finally:
            b.raw_quit(sock, pid)


DEFAULT_BOOT_VARIANTS = {
    'x86_64': ['argv', 'argv+m=microvm', 'best'],
    'aarch64': ['argv', 'raw'],
    'ppc64le': ['argv', 'raw'],
    's390x': ['argv', 'raw'],
}


def main(bench, args):
    inv = Investigate(bench, args)
    what = args.investigate
    if what == 'boot':
        inv.boot()
    elif what == 'hang':
        inv.hang()
    elif what == 'start':
        inv.start()
    elif what == 'qmp':
        inv.qmp()
    else:
        raise SystemExit(f'investigate: unknown investigation {what!r} (boot, hang, start, qmp)')
    return 0
