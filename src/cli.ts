#!/usr/bin/env node
import { cliMain } from './entry.js';

process.exitCode = await cliMain(process.argv.slice(2));
