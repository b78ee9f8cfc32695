import { actionPost } from './entry.js';

actionPost();
