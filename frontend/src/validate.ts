// The contract's field rules, checked before a request so mistakes are explained at once.
export const USER_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

export function userIdProblem(id: string): string | null {
  if (!id) return "Enter a user id.";
  if (!USER_ID.test(id)) return "User ids are 1-128 letters, digits or . _ : @ -";
  return null;
}

export function displayNameProblem(name: string): string | null {
  const n = name.trim();
  if (!n) return "Enter a display name.";
  if (n.length > 100) return "Display names are at most 100 characters.";
  return null;
}

export function passwordProblem(p: string): string | null {
  if (p.length < 8) return "Passwords are at least 8 characters.";
  if (p.length > 128) return "Passwords are at most 128 characters.";
  return null;
}
