import { describe, expect, it } from 'vitest';
import { expiredIndex } from '../src/host/mirror.js';

describe('an expired mirror index', () => {
  it("is recognised in apt's words, with the advice", () => {
    // apt 2.6's message for a snapshot mirror, as mmdebstrap and grml-debootstrap print it.
    const log =
      'E: Release file for http://mirror.example/debian/dists/trixie/InRelease is expired (invalid since 3d 4h 12min 2s). Updates for this repository will not be applied.\nE: other';
    expect(expiredIndex(log)).toBe(
      "the mirror's index has expired: Release file for http://mirror.example/debian/dists/trixie/InRelease is expired (invalid since 3d 4h 12min 2s) (a stale or snapshot mirror? check-valid-until: false accepts it)",
    );
  });

  it('is not found where apt said nothing of it', () => {
    expect(expiredIndex('E: Unable to locate package hello')).toBeUndefined();
  });
});
