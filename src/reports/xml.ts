/** Text and attribute values for the JUnit XML reports (goss, autopkgtest). */

// XML 1.0 forbids most control characters even as references; command output (ANSI colour
// codes, stray NULs) would otherwise make the whole file unreadable to every JUnit parser.
const XML_FORBIDDEN =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function xmlText(value: string): string {
  return value.replace(XML_FORBIDDEN, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function xmlAttr(value: string): string {
  // Newlines and tabs in attributes are normalised to spaces by parsers unless written as references.
  return xmlText(value).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}
