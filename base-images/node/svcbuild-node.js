// Helper baked into the node base image; runs inside image builds only.
//
// manifest DIR
//   One line per entry under DIR, sorted: "<kind> <digest> <relpath>" (f: sha256:mode,
//   l: link target, d: -). The base image's record of its node_modules.
//
// install APPDIR
//   Installs the dependencies of APPDIR/package.json that /home/user/node_modules does not
//   already satisfy (honouring APPDIR/package-lock.json when present) into
//   APPDIR/node_modules, then checks that the base's node_modules is unchanged.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');

const BASE_MODULES = '/home/user/node_modules';
const BASE_MANIFEST = '/home/user/node_modules.sha256';

function* scan(root, rel = '') {
  const dir = path.join(root, rel);
  for (const name of fs.readdirSync(dir).sort()) {
    const r = rel ? rel + '/' + name : name;
    const full = path.join(root, r);
    const st = fs.lstatSync(full);
    if (st.isSymbolicLink()) yield [r, 'l', fs.readlinkSync(full)];
    else if (st.isDirectory()) {
      yield [r, 'd', '-'];
      yield* scan(root, r);
    } else if (st.isFile()) {
      const h = crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex');
      yield [r, 'f', h + ':' + (st.mode & 0o7777).toString(8)];
    } else yield [r, '?', '-'];
  }
}

function manifest(root) {
  const lines = [];
  for (const [rel, kind, digest] of scan(root)) {
    if (/[\s]/.test(rel)) throw new Error('unsupported file name in base env: ' + JSON.stringify(rel));
    lines.push(`${kind} ${digest} ${rel}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

function verifyBase() {
  const base = new Map();
  for (const line of fs.readFileSync(BASE_MANIFEST, 'utf8').split('\n')) {
    if (!line) continue;
    const [kind, digest, ...rest] = line.split(' ');
    base.set(rest.join(' '), kind + ' ' + digest);
  }
  const problems = [];
  const seen = new Set();
  for (const [rel, kind, digest] of scan(BASE_MODULES)) {
    const want = base.get(rel);
    if (want === undefined) problems.push('added: ' + BASE_MODULES + '/' + rel);
    else if (want !== kind + ' ' + digest) problems.push('changed: ' + BASE_MODULES + '/' + rel);
    seen.add(rel);
  }
  for (const rel of base.keys()) if (!seen.has(rel)) problems.push('deleted: ' + BASE_MODULES + '/' + rel);
  if (problems.length) {
    process.stderr.write('svcbuild: the base image\'s node_modules changed; it must stay immutable.\n');
    for (const p of problems) process.stderr.write('  ' + p + '\n');
    process.exit(3);
  }
}

function install(appDir) {
  const semver = require('/usr/local/lib/node_modules/npm/node_modules/semver');
  const pkg = JSON.parse(fs.readFileSync(path.join(appDir, 'package.json'), 'utf8'));
  let lock = null;
  const lockPath = path.join(appDir, 'package-lock.json');
  if (fs.existsSync(lockPath)) lock = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
  const wanted = { ...(pkg.dependencies || {}) };
  const lacking = {};
  const reused = [];
  for (const [name, range] of Object.entries(wanted)) {
    const locked = lock && lock.packages && lock.packages['node_modules/' + name];
    const spec = locked && locked.version ? locked.version : range;
    let baseVersion = null;
    try {
      baseVersion = JSON.parse(fs.readFileSync(path.join(BASE_MODULES, name, 'package.json'), 'utf8')).version;
    } catch {
      baseVersion = null;
    }
    const ok = baseVersion && semver.valid(baseVersion) && semver.validRange(spec) && semver.satisfies(baseVersion, spec);
    if (ok) reused.push(name + '@' + baseVersion);
    else lacking[name] = spec;
  }
  if (reused.length) console.log('svcbuild: reused from the base image: ' + reused.join(', '));
  const names = Object.keys(lacking);
  if (names.length === 0) {
    console.log('svcbuild: every dependency is preinstalled in the base image');
  } else {
    console.log('svcbuild: installing what the base image lacks: ' + names.map((n) => n + '@' + lacking[n]).join(', '));
    const scratch = fs.mkdtempSync('/tmp/svcbuild-npm-');
    fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'svcbuild-deps', private: true, dependencies: lacking }));
    try {
      execFileSync('npm', ['install', '--omit=dev', '--no-package-lock', '--cache', path.join(scratch, '.cache')], {
        cwd: scratch,
        stdio: 'inherit',
      });
    } catch {
      process.stderr.write('svcbuild: npm could not install the dependencies; its messages are above\n');
      process.exit(1);
    }
    fs.rmSync(path.join(appDir, 'node_modules'), { recursive: true, force: true });
    fs.renameSync(path.join(scratch, 'node_modules'), path.join(appDir, 'node_modules'));
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  verifyBase();
}

const [cmd, arg] = process.argv.slice(2);
if (cmd === 'manifest' && arg) manifest(arg);
else if (cmd === 'install' && arg) install(arg);
else {
  process.stderr.write('usage: svcbuild-node.js manifest DIR | install APPDIR\n');
  process.exit(2);
}
