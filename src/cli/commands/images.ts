import type { Command } from 'commander';
import type { Ora } from 'ora';
import type { ImagesDeps } from '../../usecases/imagesContext.js';
import { commonDeps, specOptions, type CliContext, type GlobalOpts } from '../context.js';
import { drawsSpinner } from '../output.js';
import { formatBytes } from './registry.js';

interface Flags {
  json?: boolean;
  dryRun?: boolean;
  platform?: string;
  fromLock?: boolean;
}

const DOMAIN_HELP = 'cluster domain: reads clusters/<domain>/cluster.lok8s.yaml';

/**
 * `lo images …` takes image references and an optional domain: a last word without a slash, colon or @ that
 * is a cluster domain of the form `x.y` (not an archive name: .tar, .tgz, .gz, .zst) names the project, as in
 * every other command; a reference with a tag, a digest or a path never looks like one. `--config` names the
 * project without a domain.
 */
export function splitDomain(words: string[]): { refs: string[]; domain: string | undefined } {
  const last = words[words.length - 1];
  const isDomain = Boolean(last && /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(last) && !/\.(tar|tgz|gz|zst)$/.test(last));
  if (words.length > 1 && isDomain) return { refs: words.slice(0, -1), domain: last };
  return { refs: words, domain: undefined };
}

export function registerImages(program: Command, ctx: CliContext): void {
  const { printJson, printLine } = ctx.out;
  const images = program
    .command('images')
    .description("Pin images in the project's cache registry, list, remove, load, export and lock them");

  /** Runs a use case with a spinner on stderr (or one line per step when stderr is no terminal; none with --json). */
  async function run<T>(
    cmd: Command,
    flags: Flags,
    domain: string | undefined,
    fn: (deps: ImagesDeps, opts: ReturnType<typeof specOptions>) => Promise<T>,
  ): Promise<T> {
    const g = cmd.optsWithGlobals<GlobalOpts>();
    const stderr = ctx.out.io.stderr;
    let spinner: Ora | null = null;
    let onProgress: ((text: string) => void) | undefined;
    if (!flags.json && drawsSpinner(stderr)) {
      spinner = (await import('../progress.js')).startSpinner(stderr); // ora loads only for a terminal (`lo --help` registers this)
      onProgress = (text) => (spinner!.text = text);
    } else if (!flags.json) onProgress = (text) => ctx.out.logErr(text);
    try {
      return await fn({ ...commonDeps(ctx), ...(onProgress ? { onProgress } : {}) }, specOptions(domain, g));
    } finally {
      spinner?.stop();
    }
  }
  const usecases = (): Promise<typeof import('../../usecases/images.js')> => import('../../usecases/images.js');

  images
    .command('add')
    .description(
      "Copy images from the project's mirror of their registry into the cache (every platform of an index, digest unchanged), so nodes pull them by tag with the mirror and the upstream down",
    )
    .argument('[refs...]', 'image references (nginx:1.27, quay.io/org/app@sha256:…), then optionally the cluster domain')
    .option('--platform <os/arch>', 'copy only this platform of a multi-platform image (e.g. linux/amd64)')
    .option('--from-lock', 'also every image of the lock file (`lo images lock`)')
    .option('--dry-run', 'say what would be copied (the digest the mirror resolves, whether it is pinned already), copy nothing')
    .option('--json', 'print one JSON document')
    .action(async (words: string[], flags: Flags, cmd: Command) => {
      const { refs, domain } = splitDomain(words);
      const r = await run(cmd, flags, domain, async (deps, opts) =>
        (await usecases()).imagesAdd(
          opts,
          {
            refs,
            fromLock: Boolean(flags.fromLock),
            dryRun: Boolean(flags.dryRun),
            ...(flags.platform ? { platform: flags.platform } : {}),
          },
          deps,
        ),
      );
      if (flags.json) return printJson(r);
      for (const i of r.images)
        if (i.alreadyPinned) printLine(`already pinned ${i.ref} -> ${i.cacheRef}`);
        else if (r.dryRun) printLine(`would pin ${i.ref} -> ${i.cacheRef} (${i.digest}) from ${i.from}`);
        else
          printLine(
            `pinned ${i.ref} -> ${i.cacheRef} (${i.digest}, ${i.manifests} manifest${i.manifests === 1 ? '' : 's'}, ${formatBytes(i.bytesTotal)}; copied ${formatBytes(i.bytesCopied)}, ${i.blobsSkipped} blob${i.blobsSkipped === 1 ? '' : 's'} already there; ${(i.ms / 1000).toFixed(1)} s)`,
          );
    });

  images
    .command('ls')
    .description('List what the cache holds (pinned images) and what each mirror has cached: reference, digest, size')
    .argument('[domain]', DOMAIN_HELP, 'lok8s.dev')
    .option('--json', 'print one JSON document')
    .action(async (domain: string, flags: Flags, cmd: Command) => {
      const r = await run(cmd, flags, domain, async (deps, opts) => (await usecases()).imagesLs(opts, deps));
      if (flags.json) return printJson(r);
      for (const reg of r.registries) {
        printLine(`${reg.role} ${reg.name} (${reg.endpoint})${reg.error ? `: ${reg.error}` : reg.images.length ? '' : ': empty'}`);
        for (const i of reg.images)
          printLine(
            `  ${i.ref.padEnd(48)} ${i.digest.slice(0, 19)}  ${formatBytes(i.size).padStart(10)}${i.platforms ? `  ${i.platforms.join(', ')}` : ''}`,
          );
      }
    });

  images
    .command('rm')
    .description("Remove pinned images from the cache (the manifest; blobs are freed by the registry's garbage collector)")
    .argument('<refs...>', 'image references as pinned (nginx:1.27), then optionally the cluster domain')
    .option('--dry-run', 'say what would be removed, remove nothing')
    .option('--json', 'print one JSON document')
    .action(async (words: string[], flags: Flags, cmd: Command) => {
      const { refs, domain } = splitDomain(words);
      const r = await run(cmd, flags, domain, async (deps, opts) =>
        (await usecases()).imagesRm(opts, refs, { ...deps, dryRun: Boolean(flags.dryRun) }),
      );
      if (flags.json) return printJson(r);
      for (const i of r.removed) printLine(`${r.dryRun ? 'would remove' : 'removed'} ${i.ref} (${i.digest})`);
    });

  const archives = (): Promise<typeof import('../../usecases/imagesArchive.js')> => import('../../usecases/imagesArchive.js');

  images
    .command('load')
    .description(
      'Put the images of `docker save` archives and OCI image layout archives (tar, tar.gz or tar.zst, K3s air-gap tarballs, `lo images export`) into the cache, streamed',
    )
    .argument('<files...>', 'archive files, then optionally the cluster domain')
    .option('--dry-run', 'read and check every blob of the archives, say which images they hold, change nothing')
    .option('--json', 'print one JSON document')
    .action(async (words: string[], flags: Flags, cmd: Command) => {
      const { refs: files, domain } = splitDomain(words);
      const r = await run(cmd, flags, domain, async (deps, opts) =>
        (await archives()).imagesLoad(opts, files, { ...deps, dryRun: Boolean(flags.dryRun) }),
      );
      if (flags.json) return printJson(r);
      for (const i of r.images) printLine(`${r.dryRun ? 'would pin' : 'pinned'} ${i.ref} -> ${i.cacheRef} (${i.digest}) from ${i.file}`);
    });

  images
    .command('export')
    .description(
      'Write every pinned image of the project into one OCI image layout archive (`lo images load` takes it back on another machine)',
    )
    .argument('<file>', 'archive to write (tar)')
    .argument('[domain]', DOMAIN_HELP, 'lok8s.dev')
    .option('--json', 'print one JSON document')
    .action(async (file: string, domain: string, flags: Flags, cmd: Command) => {
      const r = await run(cmd, flags, domain, async (deps, opts) => (await archives()).imagesExport(opts, file, deps));
      if (flags.json) return printJson(r);
      printLine(`wrote ${r.file}: ${r.images.length} image${r.images.length === 1 ? '' : 's'}, ${r.blobs} blobs, ${formatBytes(r.bytes)}`);
      for (const i of r.images) printLine(`  ${i.ref} ${i.digest}`);
    });

  images
    .command('lock')
    .description(
      "Record every image the cluster's nodes hold (containerd, k8s.io) as registry/repo:tag@digest in images.lock.yaml next to the spec",
    )
    .argument('[domain]', DOMAIN_HELP, 'lok8s.dev')
    .option('--dry-run', 'print the images, write no file')
    .option('--json', 'print one JSON document')
    .action(async (domain: string, flags: Flags, cmd: Command) => {
      const r = await run(cmd, flags, domain, async (deps, opts) =>
        (await import('../../usecases/imagesLock.js')).imagesLock(opts, { ...deps, dryRun: Boolean(flags.dryRun) }),
      );
      if (flags.json) return printJson(r);
      printLine(
        `${r.dryRun ? 'would write' : r.change === 'noop' ? 'unchanged' : 'wrote'} ${r.file}: ${r.images.length} image${r.images.length === 1 ? '' : 's'} from ${r.nodes.join(', ')}`,
      );
    });
}
