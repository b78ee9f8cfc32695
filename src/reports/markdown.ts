/**
 * Text for a Markdown table cell. Cells hold what others wrote (command output, guest messages, file names): nothing
 * in it may end the cell or the row, or start HTML. A newline becomes `<br>`. Markdown's own marks (`_`, `*`,
 * backticks) stay as they are: inside one cell they can only change how its text looks, and the raw file (the CLI's
 * summary.md) stays readable.
 */
export function tableCell(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
}

/**
 * A file name for a table cell or a list, as a code span: in a code span only a pipe needs its backslash (GFM tables
 * take it out again). A name with a backtick or a line break cannot be one code span, so it gets tableCell instead.
 */
export function codeCell(text: string): string {
  if (/[`\r\n]/.test(text)) return tableCell(text);
  return `\`${text.replace(/\|/g, '\\|')}\``;
}
