/** `vmctl stop NAME`: POST /v1/domains/{name}/actions/stop. */
import { actionCommand } from './action.js';

export const stopCommand = () => actionCommand('stop', 'Stop a domain at once (like pulling the plug); from crashed, acknowledge the crash');
