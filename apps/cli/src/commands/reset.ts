/** `vmctl reset NAME`: POST /v1/domains/{name}/actions/reset. */
import { actionCommand } from './action.js';

export const resetCommand = () => actionCommand('reset', 'Reset a domain: a hard reset, the machine boots again (the console stays)');
