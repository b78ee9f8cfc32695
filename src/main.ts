import { actionMain } from './entry.js';

await actionMain();
