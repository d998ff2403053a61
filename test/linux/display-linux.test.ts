/**
 * Linux on vmm's display: Debian's generic kernel (the cloud kernel has no DRM) binds its
 * `bochs` DRM driver to the display, fbcon draws the text console into video memory, and our
 * RFB client reads it over VNC; a line typed as RFB key events reaches tty1's shell through
 * the i8042, runs, and redraws the screen. One boot, in the KVM rig on this PVM machine: the
 * RFB client runs next to vmm there (display-probe.ts), and this test checks what it reports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../lib/vmm-process.js';
import { rigNeeded, runInKvm } from '../rig/rig.js';
import { EXIT_POWEROFF } from '../../libs/vmm/src/exit-codes.js';

const where = rigNeeded() ? 'in the KVM rig' : 'directly';
const PROBE = join(ROOT, 'test/linux/display-probe.ts');

function guestAssets(): Record<string, string> {
  const out = execFileSync('bash', [join(ROOT, 'scripts/guest-assets.sh'), '--quiet'], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

type Step = { step: string; t: number } & Record<string, unknown>;

/** The probe's `DISPLAY-PROBE {json}` lines, by step. */
function probeSteps(stdout: string): Map<string, Step> {
  const steps = new Map<string, Step>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('DISPLAY-PROBE ')) continue;
    const s = JSON.parse(line.slice('DISPLAY-PROBE '.length)) as Step;
    steps.set(s.step, s);
  }
  return steps;
}

test(`Linux's text console on the bochs display shows over VNC, and a line typed over VNC runs and redraws it (${where})`, { timeout: 420_000 }, async (t) => {
  const assets = guestAssets();
  const r = await runInKvm(
    ['node', '--import', 'tsx', PROBE, '--kernel', assets.DISPLAY_KERNEL!, '--initrd', assets.DISPLAY_INITRD!],
    { timeoutMs: 360_000, cwd: ROOT },
  );
  const steps = probeSteps(r.stdout);
  const error = steps.get('error');
  if (error) assert.fail(`the probe failed at ${error.t} s: ${String(error.message)}\nserial:\n${String(error.serial)}\nvmm stderr:\n${String(error.stderr)}`);
  assert.equal(r.code, 0, `probe exit status; stderr: ${r.stderr.slice(-2000)}`);
  const step = (name: string): Step => {
    const s = steps.get(name);
    assert.ok(s, `the probe reported no "${name}" step; stdout: ${r.stdout.slice(-2000)}`);
    return s;
  };

  // The guest came up on the generic kernel, with the bochs driver's framebuffer.
  const prompt = step('prompt');
  t.diagnostic(`shell prompt ${prompt.t} s after the probe started vmm; rig: ${JSON.stringify(r.timings)}`);
  assert.equal(prompt.release, assets.RIG_KERNEL_RELEASE);
  assert.equal(prompt.fb, 'bochs-drmdrmfb', "fb0 is the bochs DRM driver's fbdev emulation");

  // The screen: the driver's default mode, text on a plain background.
  const screen = step('screen');
  t.diagnostic(`screen: ${JSON.stringify(screen)}`);
  assert.deepEqual([screen.width, screen.height], [1024, 768], 'the mode bochs sets, announced by DesktopSize');
  assert.ok((screen.lit as number) > 1000, `text drawn: ${screen.lit} pixels off the background`);
  assert.ok((screen.textRows as number) >= 3, `tty1's banner and prompt: ${screen.textRows} text rows`);
  assert.ok((screen.colours as number) >= 2);

  // The typed line ran (its output reached the serial port) and the screen shows it.
  step('typed');
  const changed = step('changed');
  t.diagnostic(`after typing: ${JSON.stringify(changed)}`);
  assert.ok((changed.pixels as number) > 500, `${changed.pixels} pixels changed`);
  assert.ok((changed.textRows as number) >= (screen.textRows as number) + 2, 'the output and the next prompt appeared below the line');
  assert.ok((changed.updates as number) >= 1);
  assert.ok((changed.bytes as number) < 1024 * 768 * 4, `incremental updates carry what changed, not the screen: ${changed.bytes} bytes`);

  assert.equal(step('exit').code, EXIT_POWEROFF, 'poweroff on the serial console ends vmm with 0');
});
