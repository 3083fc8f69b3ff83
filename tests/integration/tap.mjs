// TAP for the node scripts the shell tests run (openai-client.mjs,
// dialects-client.mjs, tests/console/console-test.mjs): one "ok - ..."
// or "not ok - ..." line per check (the shell numbers them) and
// "# ..." diagnostics.

export function diag(s) {
	for (const l of String(s).split('\n'))
		console.log(`# ${l}`);
}

// One check: fn returns true, or a string that says what was wrong.
// true when it passed.
export async function check(desc, fn) {
	let r;

	try {
		r = await fn();
	} catch (e) {
		r = `threw ${e?.constructor?.name}: ${e?.message}`;
	}
	if (r === true) {
		console.log(`ok - ${desc}`);
		return true;
	}
	console.log(`not ok - ${desc}`);
	diag(r);
	return false;
}
