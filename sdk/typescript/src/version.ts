/** The SDK's version; it follows the agentkeys binary's version. */
export const VERSION = "0.1.0";
