/** `vmctl reboot NAME`: POST /v1/domains/{name}/actions/reboot. */
import { actionCommand } from './action.js';

export const rebootCommand = () => actionCommand('reboot', 'Reboot a domain: the guest gets Ctrl-Alt-Del and decides');
