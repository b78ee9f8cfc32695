import { actionPost } from './post-cleanup.js';

actionPost();
