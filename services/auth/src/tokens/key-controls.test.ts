import fc from 'fast-check'
import ipaddr from 'ipaddr.js'
import { describe, expect, it } from 'vitest'
import { allowedCidrs, allowedFrom, isIpAddress, keyControls, meta, normalizeCidr } from './key-controls.ts'

const SEED = Number(process.env.FC_SEED ?? 20261203)

describe('normalizeCidr', () => {
  it.each([
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['192.0.2.7', '192.0.2.7/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:DB8::1/32', '2001:db8::/32'],
    ['::1', '::1/128'],
    ['::/0', '::/0'],
    ['::ffff:198.51.100.0/120', '198.51.100.0/24'],
    [' 10.0.0.0/8 ', '10.0.0.0/8'],
  ])('%s → %s', (given, normalized) => {
    expect(normalizeCidr(given)).toBe(normalized)
  })

  it.each([
    '',
    '10.0.0.0/33',
    '2001:db8::/129',
    '10.1/8',
    '0x0a.0.0.1/8',
    '010.0.0.1/8',
    '10.0.0.0/8/8',
    '10.0.0.0/',
    '10.0.0.0/-1',
    'fe80::1%eth0/64',
    'banana',
  ])('refuses %j', (given) => {
    expect(normalizeCidr(given)).toBeNull()
  })
})

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((octets) => octets.join('.'))
const ipv6 = fc
  .array(fc.nat(0xffff), { minLength: 8, maxLength: 8 })
  .map((parts) => parts.map((part) => part.toString(16)).join(':'))

describe('allowedFrom', () => {
  it('agrees with ipaddr.js on IPv4 and IPv6 networks, IPv4-mapped addresses included', () => {
    const network = fc.oneof(
      fc.tuple(ipv4, fc.nat(32)).map(([address, bits]) => `${address}/${bits}`),
      fc.tuple(ipv6, fc.nat(128)).map(([address, bits]) => `${address}/${bits}`),
    )
    fc.assert(
      fc.property(fc.array(network, { minLength: 1, maxLength: 4 }), fc.oneof(ipv4, ipv6), (networks, client) => {
        const normalized = networks.map((cidr) => normalizeCidr(cidr) as string)
        const controls = keyControls(null, normalized)
        const address = ipaddr.process(client)
        const expected = normalized.some((cidr) => {
          const [range, bits] = ipaddr.parseCIDR(cidr)
          return range.kind() === address.kind() && address.match(range, bits)
        })
        expect(allowedFrom(controls, client)).toBe(expected)
        // Each network holds its own address, and an IPv4 client is matched in its mapped form too.
        for (const cidr of networks) expect(allowedFrom(controls, cidr.split('/')[0])).toBe(true)
        if (address.kind() === 'ipv4') expect(allowedFrom(controls, `::ffff:${client}`)).toBe(expected)
        if (address.kind() === 'ipv4') {
          const hex = ipaddr.IPv4.parse(client).toIPv4MappedAddress().toNormalizedString()
          expect(allowedFrom(controls, hex)).toBe(expected)
        }
      }),
      { seed: SEED, numRuns: 300 },
    )
  })

  it('refuses without an address, with one that is not an address, and for a key without networks', () => {
    const controls = keyControls(null, ['10.0.0.0/8'])
    expect(allowedFrom(controls, undefined)).toBe(false)
    expect(allowedFrom(controls, { address: null })).toBe(false)
    expect(allowedFrom(controls, 'banana')).toBe(false)
    expect(allowedFrom(controls, { address: '10.0.0.1' })).toBe(true)
    expect(allowedFrom(keyControls({ a: 1 }, []), '10.0.0.1')).toBe(false)
    expect(keyControls(null, [])).toBeNull()
  })
})

describe('input schemas', () => {
  it('isIpAddress takes addresses only', () => {
    for (const good of ['10.0.0.1', '::1', '::ffff:10.0.0.1', 'fe80::1%eth0']) expect(isIpAddress(good)).toBe(true)
    for (const bad of ['10.1', '010.0.0.1', '999.0.0.1', '', 'x', '10.0.0.0/8']) expect(isIpAddress(bad)).toBe(false)
  })

  it('allowedCidrs normalizes, drops repeats, and caps the list at 32', () => {
    expect(allowedCidrs.parse(['10.1.0.0/8', '10.0.0.0/8'])).toEqual(['10.0.0.0/8'])
    expect(allowedCidrs.safeParse(Array.from({ length: 33 }, (_, i) => `10.${i}.0.0/16`)).success).toBe(false)
    expect(allowedCidrs.safeParse(['10.0.0.0/8', 'nope']).error?.issues[0]?.path).toEqual([1])
  })

  it('meta is an object of at most 4096 bytes of JSON, without lone surrogates', () => {
    expect(meta.safeParse({ a: 'x'.repeat(4088) }).success).toBe(true)
    expect(meta.safeParse({ a: 'x'.repeat(4089) }).success).toBe(false)
    expect(meta.safeParse([1]).success).toBe(false)
    expect(meta.safeParse(null).success).toBe(false)
    expect(meta.safeParse({ a: '\ud800' }).success).toBe(false)
    expect(meta.safeParse({ a: '😀' }).success).toBe(true)
  })
})
