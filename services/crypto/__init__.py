"""Pure cryptography: WeChat's open data (encryptedData) and sealing values at
rest in Redis. No I/O."""
