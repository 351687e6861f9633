package dispatch

// MaxHanded is maxHanded, for the tests of a full handoff queue.
const MaxHanded = maxHanded
