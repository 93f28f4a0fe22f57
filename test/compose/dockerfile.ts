// The Dockerfile read as a builder reads it, without a Docker engine: its
// instructions, the .dockerignore rules, and the image's file tree assembled
// from its COPY lines in a directory of ours.
import fs from 'node:fs';
import path from 'node:path';

export interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
export function instructions(text: string): Instruction[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)\s+(.*)$/.exec(l);
      if (!m) throw new Error(`Dockerfile line without arguments: ${l}`);
      return { op: m[1].toUpperCase(), args: m[2] };
    });
}

/** The arguments of COPY/ADD, in shell form or JSON form, flags (--chown=…) removed. */
export function copyArgs(args: string): string[] {
  const words = args.trim().startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  return words.filter((a) => !a.startsWith('--'));
}

/** .dockerignore as a predicate on context-relative paths: the last matching
 * rule decides, `!` re-includes, `**` spans directories, and a path is out
 * when it or a directory above it matches. */
export function dockerignore(text: string | null): (rel: string) => boolean {
  const rules = (text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const keep = l.startsWith('!');
      const pattern = path.posix.normalize((keep ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, '');
      const re = pattern
        .split('/')
        .map((part) =>
          part === '**'
            ? '.*'
            : part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\.\*\//g, '(?:.*/)?');
      return { keep, re: new RegExp(`^${re}$`) };
    });
  return (rel) => {
    const parts = rel.split('/');
    let out = false;
    for (const { keep, re } of rules) {
      for (let i = 1; i <= parts.length; i++) {
        if (re.test(parts.slice(0, i).join('/'))) {
          out = !keep;
          break;
        }
      }
    }
    return out;
  };
}

function copyInto(src: string, dest: string, rel: string, ignored: (rel: string) => boolean): void {
  if (ignored(rel)) return;
  const st = fs.lstatSync(src);
  if (st.isDirectory()) {
    fs.mkdirSync(dest, { recursive: true });
    for (const name of fs.readdirSync(src)) copyInto(path.join(src, name), path.join(dest, name), `${rel}/${name}`, ignored);
  } else if (st.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(src), dest);
  } else {
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(src, dest);
    fs.chmodSync(dest, st.mode);
  }
}

export interface BuildStep {
  /** The RUN's shell command. */
  run: string;
  /** The image directory it runs in (WORKDIR), under the assembled root. */
  cwd: string;
  /** ENV set before it. */
  env: Record<string, string>;
}

/** What the image holds after its COPY lines, under `root` (the image's `/`),
 * and its RUN steps in order with their directory and environment. Only
 * FROM, RUN, WORKDIR, COPY from the context, ENV and the run-time settings are
 * understood; anything else fails, so a new instruction is not passed over. */
export function assembleImage(dockerfileText: string, context: string, root: string): { steps: BuildStep[]; copied: string[]; workdir: string } {
  const ignoreFile = path.join(context, '.dockerignore');
  const ignored = dockerignore(fs.existsSync(ignoreFile) ? fs.readFileSync(ignoreFile, 'utf8') : null);
  let workdir = '/';
  const env: Record<string, string> = {};
  const steps: BuildStep[] = [];
  const copied: string[] = [];
  const inImage = (p: string): string => path.join(root, path.posix.resolve(workdir, p));
  for (const { op, args } of instructions(dockerfileText)) {
    if (op === 'FROM' || op === 'VOLUME' || op === 'EXPOSE' || op === 'CMD' || op === 'ENTRYPOINT' || op === 'LABEL') continue;
    if (op === 'WORKDIR') {
      workdir = path.posix.resolve(workdir, args.trim());
      fs.mkdirSync(inImage('.'), { recursive: true });
    } else if (op === 'ENV') {
      for (const m of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]] = m[2].replace(/^"|"$/g, '');
    } else if (op === 'COPY') {
      if (/--from\b/.test(args)) throw new Error(`COPY from another stage is not understood here: COPY ${args}`);
      const words = copyArgs(args);
      const dest = words.pop()!;
      for (const src of words) {
        const rel = path.posix.normalize(src).replace(/\/+$/, '');
        if (/[*?[]/.test(rel)) throw new Error(`COPY with a wildcard is not understood here: ${src}`);
        const from = path.join(context, rel);
        if (!fs.existsSync(from)) throw new Error(`COPY ${src}: not in the build context`);
        if (ignored(rel)) throw new Error(`COPY ${src}: excluded by .dockerignore`);
        // a directory's contents go to dest; a file goes into dest when it ends in / or is a directory, else becomes dest
        const intoDir = dest.endsWith('/') || (fs.existsSync(inImage(dest)) && fs.statSync(inImage(dest)).isDirectory());
        const target = !fs.statSync(from).isDirectory() && intoDir ? path.join(inImage(dest), path.basename(rel)) : inImage(dest);
        copyInto(from, target, rel, ignored);
        copied.push(rel);
      }
    } else if (op === 'RUN') {
      steps.push({ run: args.trim().startsWith('[') ? (JSON.parse(args) as string[]).join(' ') : args, cwd: inImage('.'), env: { ...env } });
    } else {
      throw new Error(`Dockerfile instruction ${op} is not understood here`);
    }
  }
  return { steps, copied, workdir: inImage('.') };
}
