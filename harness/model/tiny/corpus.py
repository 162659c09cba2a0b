"""The tiny tokenizer's training text: plain English written for this project (a few KB).

It covers the words benchmark prompts tend to use (questions, instructions, chat turns) so that
ordinary prompts encode to whole-word tokens rather than single characters. Changing it changes
every tiny model's tokenizer (and the builder version), so treat it as frozen.
"""

CORPUS = """\
Hello! How are you today? I am fine, thank you. What can I do for you?
Please write a short story about a small robot who learns to paint the sea.
Explain in simple words how a computer turns electricity into pictures on the screen.
What is the capital of France? The capital of France is Paris, a city on the river Seine.
Tell me a joke about cats. Why did the cat sit on the computer? To keep an eye on the mouse.
Summarize the following text in one sentence. The meeting was moved to Thursday afternoon.
Translate this sentence into French: the weather is nice and the sun is warm.
Give me three ideas for a weekend trip near the mountains, with a budget and a packing list.
Write a poem about the moon, the stars and the quiet night over the old town.
The quick brown fox jumps over the lazy dog while the farmer watches from the field.
A language model reads a prompt, splits it into tokens and predicts the next token, one at a time.
The first token takes the longest, because the whole prompt has to be processed before it appears.
After that, every new token reuses the cache of keys and values from the tokens before it.
Memory use grows with the length of the conversation and with the number of requests at once.
When many people send questions together, the server must answer each of them correctly.
Latency is the time you wait; throughput is how much work is done in each second.
Engineers measure the time to the first token, the time between tokens and the total time.
A laptop has a processor, a graphics chip and sometimes a neural processing unit for models.
The battery lasts longer when the work runs on the right chip and the fan stays quiet.
Good tests are small, fast and honest: they fail when the program is wrong and pass when it is right.
Water boils at one hundred degrees at sea level, and it freezes at zero degrees.
Plants need light, water and air; their leaves turn sunlight into sugar and oxygen.
The library opens at nine in the morning and closes at six in the evening on weekdays.
My favourite breakfast is bread with butter, a boiled egg, fresh fruit and a cup of coffee.
To make tea, boil the water, pour it over the leaves and wait three or four minutes.
The train to the coast leaves every hour from the central station, platform number two.
Children played in the park until it started to rain, then they ran home laughing.
She opened the window, looked at the garden and decided to plant tomatoes this year.
He read the letter twice before he understood what his old friend was trying to say.
History teaches us that small changes, repeated for many years, can shape the world.
The museum has paintings, old maps, musical instruments and a famous clock that still works.
Could you help me plan a healthy dinner for four people with rice, beans and vegetables?
Write a function that returns the sum of a list of numbers, and explain how it works.
A good answer is clear, short and correct. If you do not know, say that you do not know.
Describe the life cycle of a butterfly: egg, caterpillar, chrysalis and finally the adult.
Why is the sky blue? Sunlight is scattered by the air, and blue light is scattered the most.
The ocean covers most of the planet and holds many animals that we have never seen.
Music can make people happy, calm or sad; many songs tell a story about love or home.
The doctor said that sleep, exercise and good food are the best medicine for most people.
In the winter the lake freezes, and the whole village goes skating on the thick ice.
The teacher asked the students to read a chapter and write their own questions about it.
Numbers: one, two, three, four, five, six, seven, eight, nine, ten, hundred, thousand.
Days: Monday, Tuesday, Wednesday, Thursday, Friday, Saturday and Sunday.
Colors: red, orange, yellow, green, blue, purple, black, white, brown and grey.
The system is ready. The user asks a question, and the assistant gives a helpful answer.
Thank you for your question. Here is a short answer, followed by a longer explanation.
First, open the settings. Second, choose the device. Third, press start and wait a moment.
The results are saved in a file, so the report can be made again later without running anything.
If the test fails, read the message: it names the problem and tells you how to fix it.
Once upon a time there was a little house at the edge of a forest, and a family lived there.
Every morning the father baked bread, the mother fixed clocks and the children fed the goats.
One day a traveller knocked on the door and asked for water, and they invited him to stay.
He told them stories about distant cities, tall ships, deserts and snowy mountains.
When he left, he gave the children a small box and said: open it when you are grown.
Years later they opened the box and found a map, a key and a note that said: go and see.
"""
