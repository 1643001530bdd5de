// Cognito from the browser: the user pool's public JSON API (no SDK), called with fetch.
// These calls need no AWS credentials, only the app client id; the local emulator answers
// the same requests at its own endpoint.

const TARGET_PREFIX = "AWSCognitoIdentityProviderService.";

/** A refusal from Cognito, with a sentence for a person. */
export class CognitoError extends Error {
  constructor(type, sentence) {
    super(sentence);
    this.type = type;
  }
}

/** The refresh token no longer works: the person must sign in again. */
export class SignInRequired extends Error {}

const SENTENCES = {
  NotAuthorizedException: "Wrong username or password.",
  UserNotFoundException: "Wrong username or password.",
  UserNotConfirmedException: "This account is not confirmed yet: enter the code below.",
  UsernameExistsException: "That username is taken; pick another.",
  InvalidPasswordException:
    "The password is too weak: at least 8 characters, with upper and lower case letters and a digit.",
  CodeMismatchException: "That code is not right; check it and try again.",
  ExpiredCodeException: "That code has expired; sign up again to get a new one.",
  TooManyRequestsException: "Too many attempts; wait a minute and try again.",
  LimitExceededException: "Too many attempts; wait a minute and try again.",
  InvalidParameterException: "Some of the details are not valid; check them and try again.",
};

/** The claims of a JWT (read, not verified: the server verifies the token it is given). */
export function claimsOf(token) {
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const padded = payload + "=".repeat((4 - (payload.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

export class Cognito {
  /** endpoint: https://cognito-idp.<region>.amazonaws.com/ on AWS, the emulator locally. */
  constructor(endpoint, clientId) {
    this.endpoint = endpoint;
    this.clientId = clientId;
  }

  async call(action, body) {
    let response;
    try {
      response = await fetch(this.endpoint, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-amz-json-1.1",
          "X-Amz-Target": TARGET_PREFIX + action,
        },
        body: JSON.stringify({ ClientId: this.clientId, ...body }),
      });
    } catch {
      throw new CognitoError("NetworkError", "Cannot reach the sign-in service; check the connection.");
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      // "__type" is "NotAuthorizedException" or "...#NotAuthorizedException".
      const type = String(answer.__type || "").split("#").pop();
      throw new CognitoError(type, SENTENCES[type] || "Sign-in failed; try again.");
    }
    return answer;
  }

  async signIn(username, password) {
    const answer = await this.call("InitiateAuth", {
      AuthFlow: "USER_PASSWORD_AUTH",
      AuthParameters: { USERNAME: username, PASSWORD: password },
    });
    return tokensOf(answer.AuthenticationResult, null);
  }

  /** New ID and access tokens; the old refresh token is kept when none comes back. */
  async refresh(refreshToken) {
    try {
      const answer = await this.call("InitiateAuth", {
        AuthFlow: "REFRESH_TOKEN_AUTH",
        AuthParameters: { REFRESH_TOKEN: refreshToken },
      });
      return tokensOf(answer.AuthenticationResult, refreshToken);
    } catch (error) {
      if (error.type === "NotAuthorizedException" || error.type === "UserNotFoundException") {
        throw new SignInRequired(error.message);
      }
      throw error;
    }
  }

  /** The display name is the `name` attribute: it becomes senderName and what findUsers matches. */
  signUp(username, password, name, email) {
    const attributes = [{ Name: "name", Value: name }];
    if (email) attributes.push({ Name: "email", Value: email });
    return this.call("SignUp", { Username: username, Password: password, UserAttributes: attributes });
  }

  confirmSignUp(username, code) {
    return this.call("ConfirmSignUp", { Username: username, ConfirmationCode: code });
  }
}

function tokensOf(result, oldRefreshToken) {
  if (!result || !result.IdToken) {
    // A challenge (e.g. NEW_PASSWORD_REQUIRED) that this page does not handle.
    throw new CognitoError("Challenge", "This account needs a step this page cannot do; ask an administrator.");
  }
  return {
    idToken: result.IdToken,
    accessToken: result.AccessToken,
    refreshToken: result.RefreshToken || oldRefreshToken,
  };
}
