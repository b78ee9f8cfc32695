/**
 * ISO 8601 week of a date in UTC, e.g. 2026w48 (weeks start on Monday; week 1 holds the year's first
 * Thursday). What is rebuilt weekly is keyed on it: the GitHub cache keys, the package build
 * environments and the builder image, which must agree on the week.
 */
export function isoWeek(date: Date): string {
  const day = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  // The ISO week belongs to the year of its Thursday.
  day.setUTCDate(day.getUTCDate() + 3 - ((day.getUTCDay() + 6) % 7));
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.floor((day.getTime() - yearStart) / 86_400_000 / 7) + 1;
  return `${day.getUTCFullYear()}w${String(week).padStart(2, '0')}`;
}
