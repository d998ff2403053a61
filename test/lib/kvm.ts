import { existsSync } from 'node:fs';

/** True when this machine has /dev/kvm. When it does not, say so loudly: a skip here is a bug to chase. */
export function haveKvm(): boolean {
  if (existsSync('/dev/kvm')) return true;
  console.log('SKIP: no /dev/kvm');
  return false;
}
