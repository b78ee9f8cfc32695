/** Text for a Markdown table cell: a pipe would end the cell and a newline the row. */
export function tableCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
